package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/metering"
)

// TestUsageCLI runs a server with its own prices (a flag and a variable),
// calls a function and reads `hostless usage` as a user would.
func TestUsageCLI(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	srv := startProc(t, addr, env("HOSTLESS_ADMIN_KEY="+e2eKey, "HOSTLESS_PRICE_SERVER_HOUR=5"),
		"serve", "--addr", addr, "--data", dataDir(t), "--price-gb-second", "0.5")
	srv.waitOutput("hostless serving on "+srv.url, 20*time.Second)
	srv.waitReady()
	user := env("HOSTLESS_URL="+srv.url, "HOSTLESS_ADMIN_KEY="+e2eKey)
	mustRun(t, user, "deploy", "-f", filepath.Join(exampleDir(t, false), "hostless.yaml"))
	warm(t, srv.url+"/fn/hello")
	for range 4 {
		resp, err := http.Get(srv.url + "/fn/hello?name=usage")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// The warm-up's calls and the four: at least five, counted when the
	// records are stored.
	out := eventually(t, user, "hello", "usage", "--since", "2h")
	for _, want := range []string{
		"Usage of all functions from", "by hour", "INVOCATIONS", "total",
		"Cost at the price table (0.5 per GB-second, 0.2 per million requests, 0.09 per GB out)",
		"1 x 2048 MB server x", "x 5 = ", "Serverless costs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("hostless usage lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^\s+hello\s+([5-9]|\d\d+)\s+0\s`).MatchString(out) {
		t.Errorf("hostless usage: no line of hello with 5 or more calls and no errors:\n%s", out)
	}

	var r metering.Report
	if err := json.Unmarshal([]byte(mustRun(t, user, "usage", "--function", "hello", "--since", "1d", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Function != "hello" || r.Total.Invocations < 5 || r.Cost.Prices.GBSecond != 0.5 || r.Cost.Prices.ServerHour != 5 {
		t.Errorf("usage --json = %+v", r)
	}

	_, errOut, code := run(t, user, "usage", "--since", "forever")
	if code == 0 || !strings.Contains(errOut, `since=\"forever\"`) && !strings.Contains(errOut, `since="forever"`) {
		t.Errorf("usage --since forever: exit %d: %s", code, errOut)
	}
	out = mustRun(t, user, "usage", "--help")
	for _, want := range []string{"servers   = max(1, ceil(peak memory in use / server memory))", "0.0000166667"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage --help lacks %q", want)
		}
	}
}
