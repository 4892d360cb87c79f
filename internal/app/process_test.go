package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/artifact"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/sandbox"
	"github.com/hostless/hostless/internal/wasmtest"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

// zipCode zips a code directory into a file, as `hostless deploy` does.
func zipCode(t *testing.T, dir string) string { return zipCodeB(t, dir) }

func zipCodeB(t testing.TB, dir string) string {
	t.Helper()
	var b bytes.Buffer
	if err := artifact.Zip(dir, &b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "code.zip")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func needSandbox(t *testing.T) {
	t.Helper()
	if err := sandbox.Check(); err != nil {
		t.Skip("needs a host that can sandbox (CI runs as root): ", err)
	}
}

func TestProcessFunctionOverHTTP(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	code := zipCode(t, wasmtest.LambdaFn(t))
	a.deploy("lfn", code, function.Spec{Runtime: function.RuntimeProcess, Timeout: function.Duration(2 * time.Second), MemoryMB: 64,
		Network: function.NetworkNone})

	resp, body := a.do("GET", "/fn/lfn/hello?name=ada", nil, nil)
	if resp.StatusCode != 201 || string(body) != "hello ada" || resp.Header.Get("X-Fn") != "lambdafn" {
		t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body)
	}
	rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id"))
	if rec.Status != function.StatusOK || !rec.Cold || rec.HTTPStatus != 201 {
		t.Fatalf("record %+v", rec)
	}
	var logs []string
	for _, l := range rec.Logs {
		logs = append(logs, l.Stream+": "+l.Line)
	}
	if got := strings.Join(logs, "\n"); !strings.Contains(got, "stdout: hello log line") || !strings.Contains(got, "stderr: hello on stderr") {
		t.Fatalf("logs of the record: %q", got)
	}

	// The second call is warm, and the instance kept its globals.
	resp, body = a.do("GET", "/fn/lfn/count", nil, nil)
	resp2, body2 := a.do("GET", "/fn/lfn/count", nil, nil)
	if resp.StatusCode != 200 || resp2.StatusCode != 200 || !strings.Contains(string(body2), `"count":2`) {
		t.Fatalf("%s then %s", body, body2)
	}
	if rec := a.record(resp2.Header.Get("X-Hostless-Invocation-Id")); rec.Cold {
		t.Fatal("the second call was cold")
	}

	// The function's own failure, its timeout and its memory limit are
	// the caller's 502/504 and the record's status.
	for _, c := range []struct {
		path   string
		code   int
		status string
	}{
		{"/fn/lfn/fail", http.StatusBadGateway, function.StatusError},
		{"/fn/lfn/sleep?arg=5s", http.StatusGatewayTimeout, function.StatusTimeout},
		{"/fn/lfn/alloc", http.StatusBadGateway, function.StatusOOM},
	} {
		resp, body := a.do("GET", c.path, nil, nil)
		if resp.StatusCode != c.code {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
		if rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id")); rec.Status != c.status {
			t.Fatalf("%s: record status %s, want %s (%s)", c.path, rec.Status, c.status, rec.Error)
		}
	}
	// And the function keeps serving.
	if resp, body := a.do("GET", "/fn/lfn/hello?name=again", nil, nil); resp.StatusCode != 201 || string(body) != "hello again" {
		t.Fatalf("after the failures: %d %q", resp.StatusCode, body)
	}
}

func TestProcessFunctionsRefusedWithoutSandbox(t *testing.T) {
	if sandbox.Check() == nil {
		t.Skip("this host can sandbox; the refusal shows only where it can't")
	}
	a := startApp(t, newConfig(t))
	ref, err := a.c.UploadArtifact(context.Background(), zipCode(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.c.PutFunction(context.Background(), "p", function.Spec{Runtime: function.RuntimeProcess, Code: ref})
	if err == nil || !strings.Contains(err.Error(), "isolation: none") {
		t.Fatalf("want a refusal that names isolation: none, got %v", err)
	}
}

// Process functions live under the same limits as wasm ones: a
// concurrency limit with a bounded queue and 429s, scale to zero after
// the idle timeout (the next call is cold and works), and min_instances
// kept warm across idle time.
func TestProcessFunctionScaling(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	code := zipCode(t, wasmtest.LambdaFn(t))
	base := function.Spec{Runtime: function.RuntimeProcess, Timeout: function.Duration(5 * time.Second), MemoryMB: 64,
		Network: function.NetworkNone, IdleTimeout: function.Duration(time.Second)}

	limited := base
	limited.Concurrency = function.Concurrency{Max: 2, QueueTimeout: function.Duration(100 * time.Millisecond)}
	a.deploy("limited", code, limited)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	retryAfter := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := a.do("GET", "/fn/limited/sleep?arg=1s", nil, nil)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" {
				retryAfter++
			}
		}()
	}
	wg.Wait()
	if statuses[200] != 2 || statuses[429] != 6 || retryAfter != 6 {
		t.Fatalf("concurrency max 2 with 8 calls: %v (%d with Retry-After)", statuses, retryAfter)
	}

	// Scale to zero: the instances stop after the idle timeout; the next
	// call starts one (cold) and works.
	waitFor(t, "instances of limited to stop", func() bool {
		st := a.sched.Stats()
		return st.Idle == 0 && st.Busy == 0
	})
	resp, body := a.do("GET", "/fn/limited/hello?name=back", nil, nil)
	if resp.StatusCode != 201 || string(body) != "hello back" {
		t.Fatalf("after scale to zero: %d %q", resp.StatusCode, body)
	}
	if rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id")); !rec.Cold {
		t.Fatal("the call after scale to zero was not a cold start")
	}
	waitFor(t, "instances to stop again", func() bool { return a.sched.Stats().Idle == 0 })

	// min_instances: started after the deploy, kept past the idle timeout,
	// and the first call finds one warm.
	warm := base
	warm.MinInstances = 1
	a.deploy("warm", code, warm)
	waitFor(t, "a min instance", func() bool { return a.sched.Stats().Idle == 1 })
	time.Sleep(2500 * time.Millisecond) // past the idle timeout
	if st := a.sched.Stats(); st.Idle != 1 {
		t.Fatalf("min_instances 1 after the idle timeout: %+v", st)
	}
	resp, _ = a.do("GET", "/fn/warm/count", nil, nil)
	if rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id")); resp.StatusCode != 200 || rec.Cold {
		t.Fatalf("first call of a function with a min instance: %d cold=%v", resp.StatusCode, rec.Cold)
	}
}

// TestProcessFunctionReachesThePlatform: a sandboxed Lambda function
// reaches the platform's APIs through its instance's local endpoint
// (HOSTLESS_API_URL) with the token its call brought, acting as the user
// who called it; Lambda's JWT authorizer claims carry the verified caller.
func TestProcessFunctionReachesThePlatform(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	code := zipCode(t, wasmtest.LambdaFn(t))
	a.deploy("lfn", code, function.Spec{Runtime: function.RuntimeProcess, Timeout: function.Duration(5 * time.Second), MemoryMB: 64,
		Network: function.NetworkNone})
	resp, body := a.do("POST", "/v1/auth/signup", []byte(`{"email":"ann@example.com","password":"correct horse battery"}`), nil)
	if resp.StatusCode != 201 {
		t.Fatalf("signup: %d %s", resp.StatusCode, body)
	}
	var tk struct {
		AccessToken string              `json:"access_token"`
		User        struct{ ID string } `json:"user"`
	}
	if err := json.Unmarshal(body, &tk); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Status int               `json:"status"`
		Body   string            `json:"body"`
		Claims map[string]string `json:"claims"`
	}
	call := func(token string) answer {
		t.Helper()
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		resp, body := a.do("GET", "/fn/lfn/platform?arg=/v1/auth/me", nil, h)
		if resp.StatusCode != 200 {
			t.Fatalf("platform call: %d %s", resp.StatusCode, body)
		}
		var ans answer
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return ans
	}
	ans := call(tk.AccessToken)
	if ans.Status != 200 || !strings.Contains(ans.Body, tk.User.ID) || ans.Claims["sub"] != tk.User.ID || ans.Claims["email"] != "ann@example.com" {
		t.Fatalf("as the user: %+v", ans)
	}
	// Called by no one, the function's token is its own, not a user's.
	if ans := call(""); ans.Status != 401 || len(ans.Claims) != 0 {
		t.Fatalf("anonymous: %+v", ans)
	}
}

// TestProcessFunctionUsesS3: a Lambda function that names buckets in its
// spec reaches them with the AWS SDK configured from its environment alone
// (config.LoadDefaultConfig: temporary credentials and
// AWS_ENDPOINT_URL_S3 at its instance's endpoint), for what its grant
// says and nothing else; a deploy naming a missing bucket is refused.
func TestProcessFunctionUsesS3(t *testing.T) {
	needSandbox(t)
	a := startApp(t, newConfig(t))
	admin := http.Header{"Authorization": {"Bearer " + testKey}}
	for _, b := range []string{"photos", "thumbs", "private"} {
		if resp, body := a.do("PUT", "/v1/storage/"+b, nil, admin); resp.StatusCode != 201 {
			t.Fatalf("create bucket %s: %d %s", b, resp.StatusCode, body)
		}
	}
	for _, o := range []string{"photos/cat.jpg", "private/salaries.csv"} {
		if resp, body := a.do("PUT", "/v1/storage/"+o, []byte("bytes of "+o), admin); resp.StatusCode != 200 && resp.StatusCode != 201 {
			t.Fatalf("put %s: %d %s", o, resp.StatusCode, body)
		}
	}
	code := zipCode(t, wasmtest.LambdaFn(t))
	spec := function.Spec{Runtime: function.RuntimeProcess, Timeout: function.Duration(10 * time.Second), MemoryMB: 128,
		Network: function.NetworkNone, Buckets: map[string]string{"photos": "read", "thumbs": "read-write"}}
	a.deploy("lfn", code, spec)
	call := func(arg string) string {
		t.Helper()
		resp, body := a.do("GET", "/fn/lfn/s3?arg="+url.QueryEscape(arg), nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("s3 %q: %d %s", arg, resp.StatusCode, body)
		}
		var s string
		if err := json.Unmarshal(body, &s); err != nil {
			return string(body)
		}
		return s
	}
	for _, c := range []struct{ arg, want string }{
		{"list", "photos,thumbs"},
		{"get photos cat.jpg", "bytes of photos/cat.jpg"},
		{"put thumbs cat.jpg small", "put"},
		{"get thumbs cat.jpg", "small"},
		{"put photos dog.jpg woof", "error AccessDenied"},
		{"get private salaries.csv", "error AccessDenied"},
	} {
		if got := call(c.arg); got != c.want {
			t.Errorf("s3 %q = %q, want %q", c.arg, got, c.want)
		}
	}
	if resp, body := a.do("GET", "/v1/storage/thumbs/cat.jpg", nil, admin); resp.StatusCode != 200 || string(body) != "small" {
		t.Errorf("the function's object, read by an admin: %d %q", resp.StatusCode, body)
	}
	spec.Buckets = map[string]string{"nowhere": "read"}
	ref, err := a.c.UploadArtifact(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	spec.Code = ref
	if _, err := a.c.PutFunction(context.Background(), "lfn", spec); err == nil || !strings.Contains(err.Error(), `bucket "nowhere" does not exist`) {
		t.Errorf("deploy naming a missing bucket: %v", err)
	}
}
