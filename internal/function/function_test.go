package function_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{name: "simple", input: "hello", ok: true},
		{name: "one letter", input: "a", ok: true},
		{name: "one digit", input: "7", ok: true},
		{name: "hyphen inside", input: "image-resize", ok: true},
		{name: "double hyphen", input: "a--b", ok: true},
		{name: "digits", input: "v2-api-3", ok: true},
		{name: "63 characters", input: strings.Repeat("a", 63), ok: true},
		{name: "64 characters", input: strings.Repeat("a", 64)},
		{name: "empty", input: ""},
		{name: "uppercase", input: "Hello"},
		{name: "leading hyphen", input: "-hello"},
		{name: "trailing hyphen", input: "hello-"},
		{name: "underscore", input: "hello_world"},
		{name: "dot", input: "hello.world"},
		{name: "slash", input: "a/b"},
		{name: "space", input: "a b"},
		{name: "unicode", input: "héllo"},
		{name: "trailing newline", input: "hello\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := function.ValidName(tt.input)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidName(%q) = %v, want nil", tt.input, err)
				}
				return
			}
			if !errors.Is(err, function.ErrInvalid) {
				t.Fatalf("ValidName(%q) = %v, want ErrInvalid", tt.input, err)
			}
			if !strings.Contains(err.Error(), "DNS label") {
				t.Errorf("error %q does not say what a name must be", err)
			}
		})
	}
}

var code = "sha256:" + strings.Repeat("ab", 32)

func validSpec() function.Spec {
	return function.Spec{Runtime: function.RuntimeWasm, Code: code, MemoryMB: 128,
		Timeout: function.Duration(10 * time.Second), Env: map[string]string{"GREETING": "hi"}}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	manyVars := map[string]string{}
	for i := range function.MaxEnvVars + 1 {
		manyVars[fmt.Sprintf("V%d", i)] = ""
	}
	maxVars := map[string]string{}
	for i := range function.MaxEnvVars {
		maxVars[fmt.Sprintf("V%d", i)] = ""
	}
	tests := []struct {
		name   string
		change func(s *function.Spec)
		want   string // a fragment of the error; empty means valid
	}{
		{name: "valid", change: func(*function.Spec) {}},
		{name: "no env", change: func(s *function.Spec) { s.Env = nil }},
		{name: "empty runtime", change: func(s *function.Spec) { s.Runtime = "" }, want: "runtime"},
		{name: "other runtime", change: func(s *function.Spec) { s.Runtime = "node" }, want: `runtime "node"`},
		{name: "code without prefix", change: func(s *function.Spec) { s.Code = strings.Repeat("ab", 32) }, want: "code"},
		{name: "code in uppercase hex", change: func(s *function.Spec) { s.Code = "sha256:" + strings.Repeat("AB", 32) }, want: "code"},
		{name: "code too short", change: func(s *function.Spec) { s.Code = "sha256:abc" }, want: "code"},
		{name: "code with trailing newline", change: func(s *function.Spec) { s.Code += "\n" }, want: "code"},
		{name: "other hash", change: func(s *function.Spec) { s.Code = "md5:" + strings.Repeat("a", 32) }, want: "code"},
		{name: "contract cgi", change: func(s *function.Spec) { s.Contract = function.ContractCGI }},
		{name: "invoke mode stream", change: func(s *function.Spec) { s.InvokeMode = function.InvokeStream }},
		{name: "invoke mode buffered", change: func(s *function.Spec) { s.InvokeMode = function.InvokeBuffered }},
		{name: "invoke mode other", change: func(s *function.Spec) { s.InvokeMode = "response_stream" }, want: `invoke_mode "response_stream"`},
		{name: "contract sdk", change: func(s *function.Spec) { s.Contract = function.ContractSDK }},
		{name: "unknown contract", change: func(s *function.Spec) { s.Contract = "wagi" }, want: `contract "wagi"`},
		{name: "memory at minimum", change: func(s *function.Spec) { s.MemoryMB = function.MinMemoryMB }},
		{name: "memory at maximum", change: func(s *function.Spec) { s.MemoryMB = function.MaxMemoryMB }},
		{name: "memory zero", change: func(s *function.Spec) { s.MemoryMB = 0 }, want: "memory 0 MB"},
		{name: "memory over", change: func(s *function.Spec) { s.MemoryMB = function.MaxMemoryMB + 1 }, want: "memory 4097 MB"},
		{name: "negative memory", change: func(s *function.Spec) { s.MemoryMB = -1 }, want: "memory"},
		{name: "concurrency set", change: func(s *function.Spec) {
			s.Concurrency = function.Concurrency{Max: 5, PerInstance: 1, QueueTimeout: function.Duration(time.Second)}
		}},
		{name: "concurrency at maximum", change: func(s *function.Spec) { s.Concurrency.Max = function.MaxConcurrency }},
		{name: "concurrency over", change: func(s *function.Spec) { s.Concurrency.Max = function.MaxConcurrency + 1 }, want: "concurrency.max 10001"},
		{name: "negative concurrency", change: func(s *function.Spec) { s.Concurrency.Max = -1 }, want: "concurrency.max -1"},
		{name: "per_instance 2 on wasm", change: func(s *function.Spec) { s.Concurrency.PerInstance = 2 }, want: "concurrency.per_instance 2"},
		{name: "queue timeout over", change: func(s *function.Spec) { s.Concurrency.QueueTimeout = function.Duration(6 * time.Minute) }, want: "concurrency.queue_timeout 6m0s"},
		{name: "negative queue timeout", change: func(s *function.Spec) { s.Concurrency.QueueTimeout = -1 }, want: "concurrency.queue_timeout"},
		{name: "idle timeout", change: func(s *function.Spec) { s.IdleTimeout = function.Duration(30 * time.Second) }},
		{name: "min instances", change: func(s *function.Spec) { s.MinInstances = 3 }},
		{name: "min instances over", change: func(s *function.Spec) { s.MinInstances = function.MaxMinInstances + 1 }, want: "min_instances 101"},
		{name: "negative min instances", change: func(s *function.Spec) { s.MinInstances = -1 }, want: "min_instances -1"},
		{name: "min instances above max", change: func(s *function.Spec) { s.MinInstances = 3; s.Concurrency.Max = 2 }, want: "min_instances 3 is more than concurrency.max 2"},
		{name: "idle timeout under", change: func(s *function.Spec) { s.IdleTimeout = function.Duration(time.Millisecond) }, want: "idle_timeout 1ms"},
		{name: "idle timeout over", change: func(s *function.Spec) { s.IdleTimeout = function.Duration(25 * time.Hour) }, want: "idle_timeout 25h0m0s"},
		{name: "timeout at minimum", change: func(s *function.Spec) { s.Timeout = function.Duration(function.MinTimeout) }},
		{name: "timeout at maximum", change: func(s *function.Spec) { s.Timeout = function.Duration(function.MaxTimeout) }},
		{name: "timeout zero", change: func(s *function.Spec) { s.Timeout = 0 }, want: "timeout"},
		{name: "timeout under a millisecond", change: func(s *function.Spec) { s.Timeout = function.Duration(time.Microsecond) }, want: "timeout"},
		{name: "timeout over", change: func(s *function.Spec) { s.Timeout = function.Duration(function.MaxTimeout + 1) }, want: "timeout"},
		{name: "most env vars", change: func(s *function.Spec) { s.Env = maxVars }},
		{name: "too many env vars", change: func(s *function.Spec) { s.Env = manyVars }, want: "257 variables"},
		{name: "empty env name", change: func(s *function.Spec) { s.Env = map[string]string{"": "x"} }, want: "env name"},
		{name: "env name starting with a digit", change: func(s *function.Spec) { s.Env = map[string]string{"1A": "x"} }, want: `env name "1A"`},
		{name: "env name with digits after", change: func(s *function.Spec) { s.Env = map[string]string{"A1_b": "x"} }},
		{name: "env name starting with underscore", change: func(s *function.Spec) { s.Env = map[string]string{"_X": "x"} }},
		{name: "env name with hyphen", change: func(s *function.Spec) { s.Env = map[string]string{"A-B": "x"} }, want: "env name"},
		{name: "env name with equals", change: func(s *function.Spec) { s.Env = map[string]string{"A=B": "x"} }, want: "env name"},
		{name: "env name of 256", change: func(s *function.Spec) { s.Env = map[string]string{strings.Repeat("A", 256): ""} }},
		{name: "env name of 257", change: func(s *function.Spec) { s.Env = map[string]string{strings.Repeat("A", 257): ""} }, want: "env name"},
		{name: "env value with NUL", change: func(s *function.Spec) { s.Env = map[string]string{"A": "x\x00y"} }, want: "env A contains a NUL"},
		{name: "env value with newline", change: func(s *function.Spec) { s.Env = map[string]string{"A": "x\ny"} }},
		{name: "env at the byte limit", change: func(s *function.Spec) {
			s.Env = map[string]string{"A": strings.Repeat("x", function.MaxEnvBytes-1)}
		}},
		{name: "allowed hosts", change: func(s *function.Spec) {
			s.AllowedHosts = []string{"api.example.com", "*.example.org", "127.0.0.1:8080", "[::1]:9000", "Example.NET:443", "localhost"}
		}},
		{name: "allowed hosts at the limit", change: func(s *function.Spec) {
			s.AllowedHosts = slices.Repeat([]string{"a.example"}, function.MaxAllowedHosts)
		}},
		{name: "allowed hosts over the limit", change: func(s *function.Spec) {
			s.AllowedHosts = slices.Repeat([]string{"a.example"}, function.MaxAllowedHosts+1)
		}, want: "allowed_hosts has 33 entries (at most 32)"},
		{name: "allowed host empty", change: func(s *function.Spec) { s.AllowedHosts = []string{""} }, want: `allowed_hosts ""`},
		{name: "allowed host with scheme", change: func(s *function.Spec) { s.AllowedHosts = []string{"https://a.example"} }, want: `allowed_hosts "https://a.example"`},
		{name: "allowed host with path", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.example/x"} }, want: "is not a host name"},
		{name: "allowed host star inside", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.*.example"} }, want: `only as a leading "*."`},
		{name: "allowed host bare star", change: func(s *function.Spec) { s.AllowedHosts = []string{"*"} }, want: `only as a leading "*."`},
		{name: "allowed host port zero", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.example:0"} }, want: "port"},
		{name: "allowed host port too big", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.example:65536"} }, want: "port"},
		{name: "allowed host empty port", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.example:"} }, want: "port"},
		{name: "allowed host bare ipv6", change: func(s *function.Spec) { s.AllowedHosts = []string{"::1"} }, want: "is not a host name"},
		{name: "allowed host ipv4 in brackets", change: func(s *function.Spec) { s.AllowedHosts = []string{"[127.0.0.1]"} }, want: "IPv6"},
		{name: "allowed hosts on a process function", change: func(s *function.Spec) {
			s.Runtime, s.Contract, s.Network = function.RuntimeProcess, function.ContractLambda, function.NetworkOutbound
			s.AllowedHosts = []string{"a.example"}
		}, want: "allowed_hosts is a setting of wasm functions"},
		{name: "env over the byte limit", change: func(s *function.Spec) {
			s.Env = map[string]string{"A": strings.Repeat("x", function.MaxEnvBytes)}
		}, want: "env is 65537 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSpec()
			tt.change(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, function.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		in            function.Spec
		wantMem       int
		wantTimeout   time.Duration
		validAfterSet bool
	}{
		{name: "zero", in: function.Spec{Runtime: "wasm", Code: code}, wantMem: function.DefaultMemoryMB, wantTimeout: function.DefaultTimeout},
		{name: "set values kept", in: function.Spec{Runtime: "wasm", Code: code, MemoryMB: 64, Timeout: function.Duration(time.Second)}, wantMem: 64, wantTimeout: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.in
			s.Normalize()
			if s.MemoryMB != tt.wantMem || time.Duration(s.Timeout) != tt.wantTimeout {
				t.Errorf("Normalize: memory %d timeout %v, want %d %v", s.MemoryMB, time.Duration(s.Timeout), tt.wantMem, tt.wantTimeout)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("a normalized spec fails Validate: %v", err)
			}
		})
	}
}

func TestSpecEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(s *function.Spec)
		equal  bool
	}{
		{name: "same", change: func(*function.Spec) {}, equal: true},
		{name: "env copied", change: func(s *function.Spec) { s.Env = map[string]string{"GREETING": "hi"} }, equal: true},
		{name: "runtime", change: func(s *function.Spec) { s.Runtime = "other" }},
		{name: "code", change: func(s *function.Spec) { s.Code = "sha256:" + strings.Repeat("cd", 32) }},
		{name: "contract", change: func(s *function.Spec) { s.Contract = function.ContractSDK }},
		{name: "memory", change: func(s *function.Spec) { s.MemoryMB = 256 }},
		{name: "timeout", change: func(s *function.Spec) { s.Timeout = function.Duration(11 * time.Second) }},
		{name: "env value", change: func(s *function.Spec) { s.Env = map[string]string{"GREETING": "hello"} }},
		{name: "env key of same count", change: func(s *function.Spec) { s.Env = map[string]string{"OTHER": "hi"} }},
		{name: "env var added", change: func(s *function.Spec) { s.Env = map[string]string{"GREETING": "hi", "B": ""} }},
		{name: "env removed", change: func(s *function.Spec) { s.Env = nil }},
		{name: "empty value vs missing", change: func(s *function.Spec) { s.Env = map[string]string{"GREETING": ""} }},
		{name: "concurrency max", change: func(s *function.Spec) { s.Concurrency.Max = 3 }},
		{name: "queue timeout", change: func(s *function.Spec) { s.Concurrency.QueueTimeout = function.Duration(time.Second) }},
		{name: "idle timeout", change: func(s *function.Spec) { s.IdleTimeout = function.Duration(time.Minute) }},
		{name: "min instances", change: func(s *function.Spec) { s.MinInstances = 1 }},
		{name: "retries", change: func(s *function.Spec) { zero := 0; s.Retry.MaxAttempts = &zero }},
		{name: "default retries named", change: func(s *function.Spec) { two := 2; s.Retry.MaxAttempts = &two }, equal: true},
		{name: "retry backoff", change: func(s *function.Spec) { s.Retry.Backoff = function.Duration(time.Minute) }},
		{name: "retry max age", change: func(s *function.Spec) { s.Retry.MaxAge = function.Duration(time.Hour) }},
		{name: "schedule", change: func(s *function.Spec) { s.Schedule = "@hourly" }},
		{name: "timezone", change: func(s *function.Spec) { s.Timezone = "Europe/Paris" }},
		{name: "trigger", change: func(s *function.Spec) { s.Triggers = []function.Trigger{{Type: "nats", Subject: "a"}} }},
		{name: "allowed hosts", change: func(s *function.Spec) { s.AllowedHosts = []string{"a.example"} }},
		{name: "invoke mode stream", change: func(s *function.Spec) { s.InvokeMode = function.InvokeStream }},
		{name: "invoke mode buffered named", change: func(s *function.Spec) { s.InvokeMode = function.InvokeBuffered }, equal: true},

		{name: "no allowed hosts vs empty", change: func(s *function.Spec) { s.AllowedHosts = []string{} }, equal: true},
		{name: "no triggers vs empty", change: func(s *function.Spec) { s.Triggers = []function.Trigger{} }, equal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := validSpec(), validSpec()
			tt.change(&b)
			if got := a.Equal(&b); got != tt.equal {
				t.Errorf("a.Equal(b) = %v, want %v", got, tt.equal)
			}
			if got := b.Equal(&a); got != tt.equal {
				t.Errorf("b.Equal(a) = %v, want %v (Equal must be symmetric)", got, tt.equal)
			}
		})
	}
	t.Run("nil and empty env", func(t *testing.T) {
		t.Parallel()
		a, b := validSpec(), validSpec()
		a.Env, b.Env = nil, map[string]string{}
		if !a.Equal(&b) {
			t.Error("a nil env and an empty env make different versions")
		}
	})
}

func TestBilledMillis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{name: "zero", d: 0, want: 1},
		{name: "one nanosecond", d: 1, want: 1},
		{name: "just under a millisecond", d: time.Millisecond - 1, want: 1},
		{name: "one millisecond", d: time.Millisecond, want: 1},
		{name: "just over", d: time.Millisecond + time.Microsecond, want: 2},
		{name: "1.001ms", d: 1001 * time.Microsecond, want: 2},
		{name: "two milliseconds", d: 2 * time.Millisecond, want: 2},
		{name: "a second and a nanosecond", d: time.Second + 1, want: 1001},
		{name: "fifteen minutes", d: 15 * time.Minute, want: 900000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := function.BilledMillis(tt.d); got != tt.want {
				t.Errorf("BilledMillis(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := range 200 {
		// Several IDs per millisecond and steps across many.
		at := base.Add(time.Duration(i/4) * time.Millisecond * 7)
		id := function.NewID(at)
		if len(id) != 26 {
			t.Fatalf("NewID = %q, %d characters, want 26", id, len(id))
		}
		if strings.Trim(id, alphabet) != "" {
			t.Fatalf("NewID = %q has characters outside Crockford's base32", id)
		}
		if seen[id] {
			t.Fatalf("NewID returned %q twice", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	// IDs of later milliseconds sort after those of earlier ones.
	for ms := 1; ms < len(ids)/4; ms++ {
		prevMax := slices.Max(ids[(ms-1)*4 : ms*4])
		curMin := slices.Min(ids[ms*4 : ms*4+4])
		if curMin <= prevMax {
			t.Fatalf("an ID of ms %d (%s) sorts before one of ms %d (%s)", ms, curMin, ms-1, prevMax)
		}
	}
	// Years apart, too.
	if a, b := function.NewID(time.Unix(0, 0)), function.NewID(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); a >= b {
		t.Errorf("NewID(1970) = %s sorts after NewID(2100) = %s", a, b)
	}
}

// TestNewIDEncodesItsTime checks that an ID sorts by the time it was made
// for, whatever the order of the calls: a backdated ID (a paging cursor such
// as "before an hour ago", a record replayed from a queue) must sort before
// the IDs of later times.
func TestNewIDEncodesItsTime(t *testing.T) {
	t.Parallel()
	now := time.Now()
	later := function.NewID(now)
	earlier := function.NewID(now.Add(-time.Hour))
	if earlier >= later {
		t.Errorf("NewID(an hour ago) = %s sorts after NewID(now) = %s, made first", earlier, later)
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "seconds", in: `"10s"`, want: 10 * time.Second},
		{name: "fraction", in: `"1.5s"`, want: 1500 * time.Millisecond},
		{name: "mixed units", in: `"1m30s"`, want: 90 * time.Second},
		{name: "milliseconds", in: `"250ms"`, want: 250 * time.Millisecond},
		{name: "zero", in: `"0s"`, want: 0},
		{name: "number", in: `10`, wantErr: true},
		{name: "bare word", in: `ten`, wantErr: true},
		{name: "no unit", in: `"10"`, wantErr: true},
		{name: "empty string", in: `""`, wantErr: true},
		{name: "garbage", in: `"soon"`, wantErr: true},
		{name: "one quote", in: `"`, wantErr: true},
		{name: "object", in: `{"s":1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d function.Duration
			err := json.Unmarshal([]byte(tt.in), &d)
			if tt.wantErr {
				if err == nil {
					t.Errorf("Unmarshal(%s) = %v, want an error", tt.in, time.Duration(d))
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if time.Duration(d) != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, time.Duration(d), tt.want)
			}
		})
	}
	t.Run("invalid errors wrap ErrInvalid", func(t *testing.T) {
		t.Parallel()
		var d function.Duration
		for _, in := range []string{`10`, `"soon"`} {
			if err := d.UnmarshalJSON([]byte(in)); !errors.Is(err, function.ErrInvalid) {
				t.Errorf("UnmarshalJSON(%s) = %v, want ErrInvalid", in, err)
			}
		}
	})
	t.Run("spec round trip", func(t *testing.T) {
		t.Parallel()
		s := validSpec()
		s.Timeout = function.Duration(90 * time.Second)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"timeout":"1m30s"`) {
			t.Errorf("JSON %s does not write the timeout as a duration string", b)
		}
		var back function.Spec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(&s) {
			t.Errorf("round trip: %+v, want %+v", back, s)
		}
	})
}

func TestStatusOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "nil", err: nil, want: function.StatusOK},
		{name: "timeout", err: fmt.Errorf("x: %w", function.ErrTimeout), want: function.StatusTimeout},
		{name: "oom", err: fmt.Errorf("%w (limit 1 MB)", function.ErrOutOfMemory), want: function.StatusOOM},
		{name: "throttled", err: fmt.Errorf("%w: f", function.ErrThrottled), want: function.StatusThrottled},
		{name: "function error", err: function.ErrFunction, want: function.StatusError},
		{name: "response too large", err: function.ErrResponseTooLarge, want: function.StatusError},
		{name: "anything else", err: errors.New("boom"), want: function.StatusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := function.StatusOf(tt.err); got != tt.want {
				t.Errorf("StatusOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestArtifactKey(t *testing.T) {
	t.Parallel()
	if got, want := function.ArtifactKey(code), "artifacts/sha256/"+strings.Repeat("ab", 32); got != want {
		t.Errorf("ArtifactKey = %q, want %q", got, want)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"amqp://app:s3cret@rabbit:5672/":       "amqp://app:****@rabbit:5672/",
		"nats://a:4222,nats://u:s3cret@b:4222": "nats://a:4222,nats://u:****@b:4222",
		"nats://u:s3cret@a:4222,nats://u:s3cret@b": "nats://u:****@a:4222,nats://u:****@b",
		"nats://s3cretToken@host:4222":             "nats://****@host:4222",
		"redis://127.0.0.1:6379/0":                 "redis://127.0.0.1:6379/0",
		"amqp://u:s3cret@[::1:bad":                 "(unparsable URL)",
	} {
		if got := function.RedactURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidEvent(t *testing.T) {
	ValidEvent := function.ValidEvent
	for _, tc := range []struct {
		e    string
		want bool
	}{
		{"*", true}, {"function.deployed", true}, {"db.todos.created", true}, {"db.*.deleted", true},
		{"auth.>", true}, {"db.todos.>", true}, {"auth.user.created", true}, {"storage.object.created", true}, {"storage.>", true},
		{"", false}, {"db", false}, {"db.", false}, {"db..created", false}, {"db.Todos.created", false},
		{"db.>.created", false}, {"secrets.x", false}, {"db.todos created", false}, {">", false},
	} {
		if got := ValidEvent(tc.e); got != tc.want {
			t.Errorf("ValidEvent(%q) = %v, want %v", tc.e, got, tc.want)
		}
	}
}
