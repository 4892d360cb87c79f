#!/usr/bin/env bash
# bench/run.sh compares the real Hostless server with a bare net/http server
# doing the same work (bench/bare), driven by bench/load in one run.
#
# Usage: bash bench/run.sh [extra flags for bench/load, e.g. -json: then only
# the JSON goes to stdout]
# Environment: C (clients, default 16), DURATION (per target, default 10s),
# WARMUP (per target, default 2s), PORT (hostless, default 18080),
# BARE_PORT (bare, default 18081).
#
# Everything listens on 127.0.0.1 and lives in a temporary directory that is
# removed on exit, servers included.
set -euo pipefail

C=${C:-16}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
PORT=${PORT:-18080}
BARE_PORT=${BARE_PORT:-18081}
READY_TIMEOUT=120

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hostless-bench.XXXXXX")
hostless_pid=""
bare_pid=""
cleanup() {
	local pid
	for pid in "$hostless_pid" "$bare_pid"; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for pid in "$hostless_pid" "$bare_pid"; do
		if [[ -n "$pid" ]]; then
			# Give each server 10 s to stop, then kill it.
			for _ in $(seq 100); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# With -json, everything but the load generator's JSON goes to stderr, so
# stdout stays machine-readable.
say() { echo "$@"; }
for arg in "$@"; do
	if [[ "$arg" == "-json" || "$arg" == "--json" ]]; then
		say() { echo "$@" >&2; }
	fi
done

die() {
	echo "run.sh: $*" >&2
	exit 1
}

for port in "$PORT" "$BARE_PORT"; do
	if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
		die "something already listens on 127.0.0.1:$port (set PORT or BARE_PORT)"
	fi
done

say "== building into $tmp/bin"
mkdir -p "$tmp/bin" "$tmp/data"
go build -o "$tmp/bin/hostless" ./cmd/hostless
go build -o "$tmp/bin/bare" ./bench/bare
go build -o "$tmp/bin/load" ./bench/load

say "== starting hostless on 127.0.0.1:$PORT (builds and compiles the example on first start)"
# up rebuilds examples/hello/*.wasm only when they are older than their sources.
"$tmp/bin/hostless" up examples/hello --addr "127.0.0.1:$PORT" --data "$tmp/data" \
	>"$tmp/hostless.log" 2>&1 &
hostless_pid=$!

say "== starting bare on 127.0.0.1:$BARE_PORT"
"$tmp/bin/bare" -addr "127.0.0.1:$BARE_PORT" >"$tmp/bare.log" 2>&1 &
bare_pid=$!

start=$SECONDS
until grep -q "hostless is up on" "$tmp/hostless.log"; do
	if ! kill -0 "$hostless_pid" 2>/dev/null; then
		cat "$tmp/hostless.log" >&2
		die "hostless exited before it was up"
	fi
	if ((SECONDS - start >= READY_TIMEOUT)); then
		tail -n 50 "$tmp/hostless.log" >&2
		die "hostless not up after ${READY_TIMEOUT}s"
	fi
	sleep 0.2
done
say "   hostless up after $((SECONDS - start))s"

hello_url="http://127.0.0.1:$PORT/fn/hello?name=Ada"
bare_url="http://127.0.0.1:$BARE_PORT/fn/hello?name=Ada"
for url in "$hello_url" "$bare_url"; do
	ok=""
	for _ in $(seq 100); do
		if body=$(curl -sf --max-time 5 "$url"); then
			ok=1
			break
		fi
		sleep 0.2
	done
	[[ -n "$ok" ]] || die "$url does not answer"
	[[ "$body" == "Hello, Ada!" ]] || die "$url answers ${body@Q}, want 'Hello, Ada!'"
done

say
say "== machine"
say "nproc:   $(nproc)"
say "cpu:     $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
say "go:      $(go version)"
say "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; above $(nproc) the machine is busy and figures are noisy)"
say "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say
say "== load: bare first (the baseline), then hostless"
status=0
"$tmp/bin/load" -url "$bare_url" -url "$hello_url" -c "$C" -d "$DURATION" -warmup "$WARMUP" "$@" || status=$?
if ((status != 0)); then
	echo "run.sh: load exited with $status; last lines of the hostless log:" >&2
	tail -n 20 "$tmp/hostless.log" >&2
fi
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
