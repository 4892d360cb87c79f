package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
)

const dir = "/app"

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		order []string
		check func(t *testing.T, m *Manifest)
	}{
		{
			name:  "minimal",
			yaml:  "functions:\n  hello:\n    runtime: wasm\n    code: hello.wasm\n",
			order: []string{"hello"},
			check: func(t *testing.T, m *Manifest) {
				want := Function{Name: "hello", Runtime: "wasm", Code: "/app/hello.wasm", BuildDir: "/app", code: "hello.wasm"}
				if got := *m.Functions["hello"]; !equal(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "every field",
			yaml: `functions:
  hello:
    runtime: wasm
    code: build/hello.wasm
    contract: sdk
    memory: 64
    timeout: 1m30s
    env: {GREETING: hi, EMPTY: "", NUM: 42}
    concurrency: {max: 5, per_instance: 1, queue_timeout: 2s}
    idle_timeout: 30s
    min_instances: 2
    rate_limit: {rps: 50, burst: 100, per_ip_rps: 0.5, per_ip_burst: 5}
    budget: {gb_seconds_per_hour: 3600, gb_seconds_per_day: 50000.5}
    invoke_mode: stream
    build: "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ../../build/hello.wasm ."
    dir: src/hello
`,
			order: []string{"hello"},
			check: func(t *testing.T, m *Manifest) {
				want := Function{
					Name: "hello", Runtime: "wasm", Code: "/app/build/hello.wasm", Contract: "sdk",
					Memory: 64, Timeout: 90 * time.Second, Env: map[string]string{"GREETING": "hi", "EMPTY": "", "NUM": "42"},
					Concurrency: function.Concurrency{Max: 5, PerInstance: 1, QueueTimeout: function.Duration(2 * time.Second)},
					IdleTimeout: 30 * time.Second, MinInstances: 2,
					RateLimit:  function.RateLimit{RPS: 50, Burst: 100, PerIPRPS: 0.5, PerIPBurst: 5},
					Budget:     function.Budget{GBSecondsPerHour: 3600, GBSecondsPerDay: 50000.5},
					InvokeMode: "stream",
					Build:      "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ../../build/hello.wasm .",
					BuildDir:   "/app/src/hello", code: "build/hello.wasm",
				}
				if got := *m.Functions["hello"]; !equal(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "process functions",
			yaml: `functions:
  api:
    runtime: nodejs
    code: api
    handler: src/index.handler
    memory: 256
  job:
    runtime: process
    code: dist/job.zip
    network: none
  db:
    runtime: process
    code: db
    network_allow: [10.20.0.0/16, 192.168.1.7/32]
  fetch:
    runtime: wasm
    code: fetch.wasm
    allowed_hosts: [api.example.com, "*.example.org", "127.0.0.1:8080"]
`,
			order: []string{"api", "db", "fetch", "job"},
			check: func(t *testing.T, m *Manifest) {
				api := Function{Name: "api", Runtime: "nodejs", Code: "/app/api", Handler: "src/index.handler", Memory: 256, BuildDir: "/app", code: "api"}
				job := Function{Name: "job", Runtime: "process", Code: "/app/dist/job.zip", Network: "none", BuildDir: "/app", code: "dist/job.zip"}
				if got := *m.Functions["api"]; !equal(got, api) {
					t.Errorf("got %+v, want %+v", got, api)
				}
				if got := m.Functions["db"].Spec(placeholderCode); len(got.NetworkAllow) != 2 || got.NetworkAllow[1] != "192.168.1.7/32" {
					t.Errorf("network_allow: %v", got.NetworkAllow)
				}
				if got := m.Functions["fetch"].Spec(placeholderCode).AllowedHosts; strings.Join(got, " ") != "api.example.com *.example.org 127.0.0.1:8080" {
					t.Errorf("allowed_hosts: %q", got)
				}
				if got := *m.Functions["job"]; !equal(got, job) {
					t.Errorf("got %+v, want %+v", got, job)
				}
				if s := m.Functions["api"].Spec(placeholderCode); s.Contract != "lambda" || s.Network != "outbound" {
					t.Errorf("defaults of a process spec: contract %q network %q", s.Contract, s.Network)
				}
			},
		},
		{
			name:  "names sorted, absolute and parent paths",
			yaml:  "functions:\n  zeta:\n    runtime: wasm\n    code: /opt/z.wasm\n  alpha:\n    runtime: wasm\n    code: ../shared/a.wasm\n    dir: /src\n  m-1:\n    runtime: wasm\n    code: ./m.wasm\n",
			order: []string{"alpha", "m-1", "zeta"},
			check: func(t *testing.T, m *Manifest) {
				for name, want := range map[string][2]string{"zeta": {"/opt/z.wasm", "/app"}, "alpha": {"/shared/a.wasm", "/src"}, "m-1": {"/app/m.wasm", "/app"}} {
					if f := m.Functions[name]; f.Code != want[0] || f.BuildDir != want[1] {
						t.Errorf("%s: Code %q BuildDir %q, want %q %q", name, f.Code, f.BuildDir, want[0], want[1])
					}
				}
			},
		},
		{
			name:  "aliases for shared values",
			yaml:  "x-env: &env {A: b}\nfunctions:\n  a:\n    runtime: &rt wasm\n    code: a.wasm\n    env: *env\n  b:\n    runtime: *rt\n    code: b.wasm\n    env: *env\n",
			order: nil, // x-env is not a field: see the errors test
		},
		{
			name:  "zero memory and timeout mean the defaults",
			yaml:  "functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    memory: 0\n    timeout: 0s\n",
			order: []string{"a"},
			check: func(t *testing.T, m *Manifest) {
				s := m.Functions["a"].Spec("sha256:" + strings.Repeat("a", 64))
				if s.MemoryMB != function.DefaultMemoryMB || time.Duration(s.Timeout) != function.DefaultTimeout {
					t.Errorf("Spec = %+v, want the defaults", s)
				}
			},
		},
		{
			name:  "anchored function",
			yaml:  "functions:\n  a: &fn\n    runtime: wasm\n    code: a.wasm\n  b: *fn\n",
			order: []string{"a", "b"},
			check: func(t *testing.T, m *Manifest) {
				if m.Functions["b"].Name != "b" || m.Functions["b"].Code != "/app/a.wasm" {
					t.Errorf("b = %+v", m.Functions["b"])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tt.yaml), dir)
			if tt.order == nil {
				if err == nil {
					t.Fatal("Parse succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Dir != dir || !slices.Equal(m.Order, tt.order) || len(m.Functions) != len(tt.order) {
				t.Errorf("Dir %q Order %v (%d functions), want %q %v", m.Dir, m.Order, len(m.Functions), dir, tt.order)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func equal(a, b Function) bool { return reflect.DeepEqual(a, b) }

func TestParseErrors(t *testing.T) {
	t.Parallel()
	fn := func(fields string) string {
		return "functions:\n  hello:\n    runtime: wasm\n    code: hello.wasm\n" + fields
	}
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, in order
	}{
		{"empty", "", []string{"no functions or collections in manifest"}},
		{"allow without outbound", "functions:\n  p:\n    runtime: process\n    code: d\n    network: none\n    network_allow: [10.1.0.0/16]\n", []string{"network_allow needs network: outbound"}},
		{"allow not a range", "functions:\n  p:\n    runtime: process\n    code: d\n    network_allow: [10.1.0.1/16]\n", []string{`network_allow "10.1.0.1/16" is not an IPv4 range`}},
		{"allowed host invalid", fn("    allowed_hosts: [api.example.com, \"https://x.example\"]\n"), []string{`allowed_hosts "https://x.example"`, "line 5"}},
		{"secrets not a list", fn("    secrets: DB_PASSWORD\n"), []string{"secrets must be a list"}},
		{"secret name invalid", fn("    secrets: [DB-PASSWORD]\n"), []string{`secret name "DB-PASSWORD" must be letters`}},
		{"allowed hosts not a list", fn("    allowed_hosts: api.example.com\n"), []string{"allowed_hosts must be a list"}},
		{"allowed hosts of a process function", "functions:\n  p:\n    runtime: process\n    code: d\n    allowed_hosts: [a.example]\n", []string{"allowed_hosts is a setting of wasm functions"}},
		{"allow not a list", "functions:\n  p:\n    runtime: process\n    code: d\n    network_allow: 10.1.0.0/16\n", []string{"network_allow must be a list"}},
		{"budget negative", fn("    budget: {gb_seconds_per_hour: -1}\n"), []string{"budget GB-seconds must be 0 (no budget) to"}},
		{"budget unknown key", fn("    budget: {per_hour: 1}\n"), []string{"unknown field budget.per_hour (accepted: gb_seconds_per_hour, gb_seconds_per_day)"}},
		{"network of wasm", fn("    network: none\n"), []string{"handler and network are settings of process functions"}},
		{"bad network", "functions:\n  p:\n    runtime: process\n    code: d\n    network: internet\n", []string{`network "internet" is not supported (accepted: none, outbound)`, "line 5"}},
		{"node handler form", "functions:\n  p:\n    runtime: nodejs\n    code: d\n    handler: index\n", []string{`handler "index" of a nodejs function must be FILE.FUNCTION`}},
		{"handler escapes", "functions:\n  p:\n    runtime: python\n    code: d\n    handler: ../x.handler\n", []string{`must be a path inside the code`}},

		{"comment only", "# nothing\n", []string{"no functions or collections in manifest"}},
		{"functions null", "functions:\n", []string{"no functions or collections in manifest"}},
		{"functions empty", "functions: {}\n", []string{"no functions or collections in manifest"}},
		{"not a mapping", "- a\n- b\n", []string{"manifest must be a mapping"}},
		{"functions a list", "functions: [a, b]\n", []string{"functions must be a mapping"}},
		{"unknown top-level key", "funtions:\n  a: {}\n", []string{`unknown field "funtions"`, "accepted: functions", "line 1"}},
		{"x- key", "x-env: &env {A: b}\nfunctions:\n  a:\n    runtime: wasm\n    code: a.wasm\n", []string{`unknown field "x-env"`}},
		{"two documents", fn("") + "---\nfunctions: {}\n", []string{"more than one YAML document"}},
		{"syntax", "functions:\n  a: [\n", []string{"manifest: yaml: line"}},
		{"tab indentation", "functions:\n\ta: {}\n", []string{"manifest: yaml:"}},
		{"bad name", "functions:\n  Hello:\n    runtime: wasm\n    code: a.wasm\n", []string{`function "Hello": name is not a DNS label`, "line 2"}},
		{"name too long", "functions:\n  " + strings.Repeat("a", 64) + ":\n    runtime: wasm\n    code: a.wasm\n", []string{"name is not a DNS label"}},
		{"concurrency a scalar", fn("    concurrency: 5\n"), []string{"concurrency must be a mapping (max, per_instance, queue_timeout)"}},
		{"concurrency unknown key", fn("    concurrency: {maximum: 5}\n"), []string{"unknown field concurrency.maximum", "line 5"}},
		{"concurrency max float", fn("    concurrency: {max: 1.5}\n"), []string{`concurrency.max "1.5" must be a whole number`}},
		{"concurrency max over", fn("    concurrency: {max: 20000}\n"), []string{"concurrency.max 20000 is out of range", "line 5"}},
		{"per_instance 4", fn("    concurrency: {per_instance: 4}\n"), []string{"concurrency.per_instance 4 is not supported"}},
		{"queue timeout text", fn("    concurrency: {queue_timeout: soon}\n"), []string{`concurrency.queue_timeout "soon" is not a duration`}},
		{"min_instances text", fn("    min_instances: two\n"), []string{`min_instances "two" must be a whole number`}},
		{"min_instances over max", fn("    concurrency: {max: 1}\n    min_instances: 2\n"), []string{"min_instances 2 is more than concurrency.max 1", "line 6"}},
		{"rate_limit unknown key", fn("    rate_limit: {qps: 5}\n"), []string{"unknown field rate_limit.qps", "accepted: rps, burst, per_ip_rps, per_ip_burst"}},
		{"rate_limit rps text", fn("    rate_limit: {rps: fast}\n"), []string{`rate_limit.rps "fast" must be a number`}},
		{"rate_limit negative", fn("    rate_limit: {per_ip_rps: -1}\n"), []string{"rate_limit rates must be 0 to", "line 5"}},
		{"rate_limit burst float", fn("    rate_limit: {burst: 2.5}\n"), []string{`rate_limit.burst "2.5" must be a whole number`}},
		{"idle timeout short", fn("    idle_timeout: 10ms\n"), []string{"idle_timeout 10ms is out of range", "line 5"}},
		{"name with underscore", "functions:\n  my_fn:\n    runtime: wasm\n    code: a.wasm\n", []string{`function "my_fn": name is not a DNS label`}},
		{"non-string name", "functions:\n  [a]:\n    runtime: wasm\n    code: a.wasm\n", []string{"function names must be strings"}},
		{"duplicate function", fn("") + "  hello:\n    runtime: wasm\n    code: b.wasm\n", []string{`function "hello": function defined twice`, "line 5"}},
		{"duplicate of a bad function", "functions:\n  hello:\n    runtime: node\n  hello:\n    runtime: wasm\n    code: a.wasm\n", []string{`function "hello": code is required`, `function "hello": function defined twice`}},
		{"function not a mapping", "functions:\n  hello: hello.wasm\n", []string{`function "hello": must be a mapping of fields`}},
		{"function null", "functions:\n  hello:\n", []string{`function "hello": runtime is required`, `function "hello": code is required`}},
		{"unknown field", fn("    memroy: 64\n"), []string{`function "hello": unknown field "memroy"`, "accepted: runtime, code, handler, contract, network, network_allow, allowed_hosts, memory, timeout, env, secrets, concurrency, idle_timeout, min_instances, rate_limit, budget, retry, schedule, timezone, triggers, cors, limits, auth, invoke_mode, build, dir, buckets", "line 5"}},
		{"invoke_mode unknown", fn("    invoke_mode: streaming\n"), []string{`function "hello": invoke_mode "streaming" is not supported (accepted: buffered, stream)`, "line 5"}},
		{"merge key", "x: &d {runtime: wasm}\nfunctions:\n  hello:\n    <<: *d\n    code: a.wasm\n", []string{`function "hello": merge keys`}},
		{"duplicate field", fn("    code: other.wasm\n"), []string{`function "hello": field "code" appears twice`, "line 5"}},
		{"runtime missing", "functions:\n  hello:\n    code: hello.wasm\n", []string{`function "hello": runtime is required (accepted: wasm, process, nodejs, python)`}},
		{"runtime unsupported", "functions:\n  hello:\n    runtime: node\n    code: hello.wasm\n", []string{`function "hello": runtime "node" is not supported (accepted: wasm, process, nodejs, python)`, "line 3"}},
		{"runtime a list", "functions:\n  hello:\n    runtime: [wasm]\n    code: hello.wasm\n", []string{`function "hello": runtime must be a single value`}},
		{"code missing", "functions:\n  hello:\n    runtime: wasm\n", []string{`function "hello": code is required`}},
		{"code empty", "functions:\n  hello:\n    runtime: wasm\n    code: \"\"\n", []string{`function "hello": code is required`}},
		{"code with NUL", "functions:\n  hello:\n    runtime: wasm\n    code: \"a\\0b\"\n", []string{`function "hello": code "a\x00b" contains a NUL byte`}},
		{"code too long", "functions:\n  hello:\n    runtime: wasm\n    code: " + strings.Repeat("a", 5000) + "\n", []string{`function "hello": code is 5000 bytes`}},
		{"contract unsupported", fn("    contract: lambda\n"), []string{`function "hello": contract "lambda" is not supported for wasm (accepted: cgi, sdk, or empty to detect)`}},
		{"memory too big", fn("    memory: 5000\n"), []string{`function "hello": memory 5000 MB is out of range (1 to 4096)`, "line 5"}},
		{"memory negative", fn("    memory: -1\n"), []string{`function "hello": memory -1 MB is out of range`}},
		{"memory with unit", fn("    memory: 64MB\n"), []string{`function "hello": memory "64MB" must be a whole number of MB`}},
		{"memory quoted", fn("    memory: \"64\"\n"), []string{`function "hello": memory "64" must be a whole number of MB`}},
		{"memory huge", fn("    memory: 99999999999999999999999\n"), []string{`function "hello": memory "99999999999999999999999" must be`}},
		{"memory fraction", fn("    memory: 1.5\n"), []string{`function "hello": memory "1.5" must be a whole number of MB`}},
		{"timeout without unit", fn("    timeout: 5\n"), []string{`function "hello": timeout "5" is not a duration such as "5s"`}},
		{"timeout garbage", fn("    timeout: soon\n"), []string{`function "hello": timeout "soon" is not a duration`}},
		{"timeout too long", fn("    timeout: 1h\n"), []string{`function "hello": timeout 1h0m0s is out of range (1ms to 15m0s)`}},
		{"timeout negative", fn("    timeout: -5s\n"), []string{`function "hello": timeout -5s is out of range`}},
		{"env a list", fn("    env: [A=b]\n"), []string{`function "hello": env must be a mapping`}},
		{"env bad name", fn("    env: {1A: b}\n"), []string{`function "hello": env name "1A" must be letters, digits and '_'`}},
		{"env nested", fn("    env: {A: {B: c}}\n"), []string{`function "hello": env A must be a string`}},
		{"env NUL value", fn("    env: {A: \"x\\0y\"}\n"), []string{`function "hello": env A contains a NUL byte`}},
		{"env duplicate", fn("    env: {A: b, A: c}\n"), []string{`function "hello": env A appears twice`}},
		{"env too many", fn("    env: {" + manyEnv(function.MaxEnvVars+1) + "}\n"), []string{`function "hello": env has 257 variables (at most 256)`}},
		{"env too big", fn("    env: {A: " + strings.Repeat("x", function.MaxEnvBytes) + "}\n"), []string{`function "hello": env is more than 65536 bytes`}},
		{"build a mapping", fn("    build: {cmd: make}\n"), []string{`function "hello": build must be a single value`}},
		{"dir a list", fn("    dir: [a]\n"), []string{`function "hello": dir must be a single value`}},
		{"several problems", "functions:\n  b:\n    runtime: node\n    code: b.wasm\n  a:\n    code: a.wasm\n", []string{`function "b": runtime "node"`, `function "a": runtime is required`}},
		{"too many functions", "functions:\n" + manyFunctions(MaxFunctions+1), []string{"manifest has 1001 functions (at most 1000)"}},
		{"too large", "functions:\n" + strings.Repeat("#", MaxManifestBytes), []string{"manifest is larger than 4 MiB"}},
		{"too many problems", "functions:\n" + strings.Repeat("  a:\n", 1) + manyBad(50), []string{"too many problems; stopped after 20"}},
		{"alias bomb", aliasBomb(), []string{"function"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte(tt.yaml), dir)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", m)
			}
			if !errors.Is(err, function.ErrInvalid) {
				t.Errorf("error %q does not wrap function.ErrInvalid", err)
			}
			msg := err.Error()
			rest := msg
			for _, want := range tt.want {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("error %q\nlacks (in order) %q", msg, want)
				}
				rest = rest[i+len(want):]
			}
			if len(msg) > 16<<10 {
				t.Errorf("error is %d bytes long", len(msg))
			}
		})
	}
}

func manyEnv(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("V")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("y", i/26))
		b.WriteString(": v")
	}
	return b.String()
}

func manyFunctions(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  f")
		b.WriteString(strings.Repeat("0", i/10))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(": {runtime: wasm, code: a.wasm}\n")
	}
	return b.String()
}

func manyBad(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("  b")
		b.WriteString(strings.Repeat("0", i/10))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(": {runtime: node}\n")
	}
	return b.String()
}

// aliasBomb is the billion laughs in YAML, under functions.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 10; i++ {
		p := "*x" + string(rune('0'+i-1))
		b.WriteString("x" + string(rune('0'+i)) + ": &x" + string(rune('0'+i)) + " [" + strings.Repeat(p+", ", 8) + p + "]\n")
	}
	b.WriteString("functions:\n  a:\n    runtime: wasm\n    code: a.wasm\n    env: *x9\n    build: *x9\n")
	return b.String()
}

func TestLoad(t *testing.T) {
	t.Parallel()
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("functions:\n"+strings.Repeat("#", MaxManifestBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		order   []string
		wantErr []string
	}{
		{name: "sample", path: "testdata/hostless.yaml", order: []string{"api", "hello"}},
		{name: "broken", path: "testdata/broken.yaml", wantErr: []string{filepath.Join(testdata, "broken.yaml") + ": ", `function "Hello": name is not a DNS label`, `function "Hello": unknown field "memroy"`}},
		{name: "missing", path: "testdata/nope.yaml", wantErr: []string{"load manifest", "no such file"}},
		{name: "directory", path: "testdata", wantErr: []string{"not a regular file"}},
		{name: "too large", path: big, wantErr: []string{"manifest is larger than 4 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Load(tt.path)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Load succeeded")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Dir != testdata || !slices.Equal(m.Order, tt.order) {
				t.Errorf("Dir %q Order %v, want %q %v", m.Dir, m.Order, testdata, tt.order)
			}
			api := m.Functions["api"]
			if api.Code != filepath.Join(testdata, "api.wasm") || api.BuildDir != filepath.Join(testdata, "src/api") ||
				api.Memory != 64 || api.Timeout != 5*time.Second || api.Env["GREETING"] != "hi" {
				t.Errorf("api = %+v", api)
			}
			for _, name := range m.Order {
				if err := m.Functions[name].CheckCode(); err != nil {
					t.Errorf("CheckCode: %v", err)
				}
			}
		})
	}
}

func TestCheckCode(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	huge := filepath.Join(tmp, "huge.wasm")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(wasmMagic); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxCodeBytes + 1); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	if err := os.Mkdir(filepath.Join(tmp, "dir.wasm"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		code    string
		wantErr string // "" for success
	}{
		{"valid", "testdata", "hello.wasm", ""},
		{"missing", "testdata", "x.wasm", `function "hello": code "x.wasm": no such file (`},
		{"bad magic", "testdata", "notwasm.wasm", `function "hello": code "notwasm.wasm": not a WebAssembly module (bad magic)`},
		{"too short", "testdata", "short.wasm", `function "hello": code "short.wasm": not a WebAssembly module (bad magic)`},
		{"manifest is not wasm", "testdata", "hostless.yaml", "not a WebAssembly module (bad magic)"},
		{"directory", tmp, "dir.wasm", `code "dir.wasm": is a directory`},
		{"too large", tmp, "huge.wasm", "is 268435457 bytes (at most 256 MiB)"},
		{"absolute path", "testdata", filepath.Join(tmp, "absent.wasm"), `code "` + filepath.Join(tmp, "absent.wasm") + `": no such file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse([]byte("functions:\n  hello:\n    runtime: wasm\n    code: '"+tt.code+"'\n"), tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Functions["hello"].CheckCode()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("CheckCode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckCode = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpec(t *testing.T) {
	t.Parallel()
	ref := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name string
		fn   Function
		want function.Spec
	}{
		{
			name: "defaults",
			fn:   Function{Name: "a", Runtime: "wasm"},
			want: function.Spec{Runtime: "wasm", Code: ref, MemoryMB: function.DefaultMemoryMB, Timeout: function.Duration(function.DefaultTimeout)},
		},
		{
			name: "all set",
			fn:   Function{Name: "a", Runtime: "wasm", Contract: "cgi", Memory: 64, Timeout: 5 * time.Second, Env: map[string]string{"A": "b"}, Secrets: []string{"B_KEY", "A_KEY"}},
			want: function.Spec{Runtime: "wasm", Code: ref, Contract: "cgi", MemoryMB: 64, Timeout: function.Duration(5 * time.Second), Env: map[string]string{"A": "b"}, Secrets: []string{"A_KEY", "B_KEY"}},
		},
		{
			name: "stream",
			fn:   Function{Name: "a", Runtime: "wasm", InvokeMode: "stream"},
			want: function.Spec{Runtime: "wasm", Code: ref, MemoryMB: function.DefaultMemoryMB, Timeout: function.Duration(function.DefaultTimeout), InvokeMode: function.InvokeStream},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.fn.Spec(ref)
			if !got.Equal(&tt.want) {
				t.Errorf("Spec = %+v, want %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if got.Env != nil {
				got.Env["A"] = "changed"
				if tt.fn.Env["A"] != "b" {
					t.Error("Spec shares its Env map with the Function")
				}
			}
		})
	}
}

// TestParseEvents reads the event fields: retry, schedule, triggers.
func TestParseEvents(t *testing.T) {
	m, err := Parse([]byte(`functions:
  worker:
    runtime: wasm
    code: w.wasm
    retry: {max_attempts: 0, max_age: 1h, backoff: 2s}
    schedule: "*/5 * * * *"
    timezone: Europe/Paris
    triggers:
      - type: amqp
        url: amqp://app:secret@127.0.0.1:5672/
        queue: orders
        batch_size: 10
        batch_window: 1s
        concurrency: 2
      - type: mqtt
        topic: sensors/+
        qos: 0
      - type: events
        events: [invocation.failed]
`), "/x")
	if err != nil {
		t.Fatal(err)
	}
	s := m.Functions["worker"].Spec("sha256:" + strings.Repeat("ab", 32))
	if s.Retry.Retries() != 0 || s.Retry.Age() != time.Hour || s.Retry.Delay(1) != 2*time.Second {
		t.Errorf("retry %+v", s.Retry)
	}
	if s.Schedule != "*/5 * * * *" || s.Timezone != "Europe/Paris" {
		t.Errorf("schedule %q %q", s.Schedule, s.Timezone)
	}
	if len(s.Triggers) != 3 || s.Triggers[0].Queue != "orders" || s.Triggers[0].BatchSize != 10 ||
		time.Duration(s.Triggers[0].BatchWindow) != time.Second || *s.Triggers[1].QoS != 0 || s.Triggers[2].Events[0] != "invocation.failed" {
		t.Errorf("triggers %+v", s.Triggers)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	if got := s.Redacted().Triggers[0].URL; got != "amqp://app:%2A%2A%2A%2A@127.0.0.1:5672/" && got != "amqp://app:****@127.0.0.1:5672/" {
		t.Errorf("redacted url %q", got)
	}
	for _, bad := range []string{
		"triggers: {type: nats}", "triggers: [{subject: a}]", "triggers: [{type: nats, colour: red}]",
		"retry: {max_attempts: many}", "retry: {tries: 3}",
	} {
		if _, err := Parse([]byte("functions:\n  w:\n    runtime: wasm\n    code: w.wasm\n    "+bad+"\n"), "/x"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
