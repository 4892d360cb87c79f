package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hostless/hostless/internal/client"
	"github.com/hostless/hostless/internal/config"
	"github.com/hostless/hostless/internal/function"
)

// syncBuffer is a log sink that tests read while the app writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// startLoggedApp starts an app whose platform log (debug level) goes to a
// buffer the test can search.
func startLoggedApp(t *testing.T, cfg config.Config) (*testApp, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	a := New(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := a.Start(context.Background()); err != nil {
		_ = a.Close(context.Background())
		t.Fatalf("start: %v", err)
	}
	ta := &testApp{App: a, t: t, cfg: cfg, base: a.URL(), c: client.New(a.URL(), testKey), hc: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ta, logs
}

// TestSecretsNeverLeak sets a distinctive secret, runs a wasm function
// that names it (it sees the value), changes it (the warm instance is
// recycled: the next call sees the new value without a redeploy), and
// then looks for both values everywhere else: API answers, invocation
// records and logs, the platform log, every file under the data
// directory, and the store's rows.
func TestSecretsNeverLeak(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testSecretsNeverLeak(t, newConfig(t)) })
	t.Run("postgres", func(t *testing.T) {
		cfg := postgresConfig(t)
		shareCompilationCache(t, cfg.DataDir)
		testSecretsNeverLeak(t, cfg)
	})
}

func testSecretsNeverLeak(t *testing.T, cfg config.Config) {
	g := buildGuests(t)
	a, logs := startLoggedApp(t, cfg)
	ctx := context.Background()
	first := "Zq9-first-" + randomSuffix() + "-secret"
	second := "Zq9-second-" + randomSuffix() + "-secret"
	values := []string{first, second}

	// A deploy naming a secret that doesn't exist is refused.
	ref, err := a.c.UploadArtifact(ctx, g.sdk)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.c.PutFunction(ctx, "leak", function.Spec{Runtime: function.RuntimeWasm, Code: ref, Secrets: []string{"SECRET_TOKEN"},
		Timeout: function.Duration(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "SECRET_TOKEN") || !strings.Contains(err.Error(), "do not exist") {
		t.Fatalf("deploy naming a missing secret = %v, want a 400 naming it", err)
	}

	info, err := a.c.SetSecret(ctx, "SECRET_TOKEN", strings.NewReader(first))
	if err != nil || info.Version != 1 {
		t.Fatalf("set = %+v, %v", info, err)
	}
	// The SDK guest is a reactor: its warm instance serves call after
	// call with the environment it started with.
	a.deploy("leak", g.sdk, function.Spec{Secrets: []string{"SECRET_TOKEN"}})
	call := func(wantCold bool) string {
		resp, body := a.do(http.MethodGet, "/fn/leak/secret?SECRET_TOKEN", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
		if rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id")); rec.Cold != wantCold {
			t.Fatalf("call cold = %v, want %v", rec.Cold, wantCold)
		}
		return string(body)
	}
	if got := call(true); got != first {
		t.Fatalf("the function sees %q, want the secret's value", got)
	}
	if got := call(false); got != first {
		t.Fatalf("the warm instance sees %q, want the secret's value", got)
	}
	if info, err = a.c.SetSecret(ctx, "SECRET_TOKEN", strings.NewReader(second)); err != nil || info.Version != 2 {
		t.Fatalf("set again = %+v, %v", info, err)
	}
	// The warm instance held the old value: it was recycled, and a new one
	// reads the new value, without a redeploy.
	if got := call(true); got != second {
		t.Fatalf("after the secret changed the function sees %q, want the new value without a redeploy", got)
	}

	// Answers of the API: the secrets, the function, its versions, records, logs.
	a.records("leak", 3)
	recs, _, err := a.c.ListInvocations(ctx, "leak", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/v1/secrets", "/v1/functions", "/v1/functions/leak", "/v1/functions/leak/versions", "/v1/invocations?function=leak", "/v1/logs?function=leak"}
	for _, r := range recs {
		paths = append(paths, "/v1/invocations/"+r.ID)
	}
	for _, p := range paths {
		scenario{name: p, path: p, headers: authHeader(testKey), status: http.StatusOK, absent: values}.run(t, a)
	}
	scenario{name: "secret listed", path: "/v1/secrets", headers: authHeader(testKey), status: http.StatusOK,
		contains: []string{`"name":"SECRET_TOKEN"`, `"version":2`}, absent: values}.run(t, a)

	// Deleting it: the instance holding it goes, and the next start fails
	// with an error that names the secret, not its value.
	if err := a.c.DeleteSecret(ctx, "SECRET_TOKEN"); err != nil {
		t.Fatal(err)
	}
	resp, body := a.do(http.MethodGet, "/fn/leak/secret?SECRET_TOKEN", nil, nil)
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte(second)) {
		t.Fatalf("call after the secret was deleted: %d %s", resp.StatusCode, body)
	}
	if rec := a.record(resp.Header.Get("X-Hostless-Invocation-Id")); !strings.Contains(rec.Error, "SECRET_TOKEN") {
		t.Errorf("the record of a start without its secret says %q; want the secret's name", rec.Error)
	}

	// The platform's log and the stored rows.
	for _, v := range values {
		if bytes.Contains(logs.Bytes(), []byte(v)) {
			t.Errorf("the platform log holds a secret value")
		}
	}
	if list, err := a.store.ListSecrets(ctx, function.DefaultProject); err != nil {
		t.Fatal(err)
	} else {
		for _, s := range list {
			for _, v := range values {
				if bytes.Contains(s.Ciphertext, []byte(v)) || bytes.Contains(s.WrappedKey, []byte(v)) {
					t.Errorf("the store holds secret %s in clear", s.Name)
				}
			}
		}
	}
	// Every file under the data directory (databases, WAL files, the bus).
	grepDir(t, cfg.DataDir, values)
}

// grepDir fails the test if any file under dir holds one of values, in
// clear or in base64.
func grepDir(t *testing.T, dir string, values []string) {
	t.Helper()
	var needles [][]byte
	for _, v := range values {
		needles = append(needles, []byte(v), []byte(base64.StdEncoding.EncodeToString([]byte(v))))
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() { // the shared compilation cache is a symlink: not ours
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds a secret value", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files under the data directory")
	}
}

// TestSecretsAndKMSAPI: who may call what, and what answers never say.
func TestSecretsAndKMSAPI(t *testing.T) {
	a := startApp(t, newConfig(t))
	ctx := context.Background()
	value := "kms-test-" + randomSuffix()
	enc, err := a.c.CreateAPIKey(ctx, "enc", []string{"kms:orders:encrypt"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := a.c.CreateAPIKey(ctx, "dec", []string{"kms:orders:decrypt"})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := a.c.CreateAPIKey(ctx, "reader", []string{"db:read"})
	if err != nil {
		t.Fatal(err)
	}
	admin, encH, decH, readerH := authHeader(testKey), authHeader(enc.Key), authHeader(dec.Key), authHeader(reader.Key)
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	var ciphertext string
	steps := []scenario{
		{name: "set without a credential", method: http.MethodPut, path: "/v1/secrets/DB", body: []byte(value), status: http.StatusUnauthorized},
		{name: "set with a non-admin key", method: http.MethodPut, path: "/v1/secrets/DB", headers: readerH, body: []byte(value), status: http.StatusForbidden, code: "forbidden"},
		{name: "set", method: http.MethodPut, path: "/v1/secrets/DB", headers: admin, body: []byte(value), status: http.StatusOK,
			contains: []string{`"name":"DB"`, `"version":1`}, absent: []string{value}},
		{name: "set a bad name", method: http.MethodPut, path: "/v1/secrets/DB-1", headers: admin, body: []byte(value), status: http.StatusBadRequest, absent: []string{value}},
		{name: "set a platform name", method: http.MethodPut, path: "/v1/secrets/HOSTLESS_API_URL", headers: admin, body: []byte("x"), status: http.StatusBadRequest},
		{name: "set too big", method: http.MethodPut, path: "/v1/secrets/BIG", headers: admin, body: bytes.Repeat([]byte("v"), 64<<10+1), status: http.StatusRequestEntityTooLarge},
		{name: "set a NUL", method: http.MethodPut, path: "/v1/secrets/NUL", headers: admin, body: []byte("a\x00" + value), status: http.StatusBadRequest, absent: []string{value}},
		{name: "list", path: "/v1/secrets", headers: admin, status: http.StatusOK, contains: []string{`"DB"`}, absent: []string{value}},
		{name: "list as non-admin", path: "/v1/secrets", headers: readerH, status: http.StatusForbidden},
		{name: "delete unknown", method: http.MethodDelete, path: "/v1/secrets/NOPE", headers: admin, status: http.StatusNotFound, code: "secret_not_found"},
		{name: "rotate master key (nothing stale)", method: http.MethodPost, path: "/v1/secrets/rotate-master-key", headers: admin, status: http.StatusOK, contains: []string{`"secrets":0`}},

		{name: "create key as non-admin", method: http.MethodPost, path: "/v1/kms/keys", headers: encH, body: js(map[string]any{"name": "orders"}), status: http.StatusForbidden},
		{name: "create key", method: http.MethodPost, path: "/v1/kms/keys", headers: admin, body: js(map[string]any{"name": "orders", "functions": []string{"checkout"}}), status: http.StatusCreated,
			contains: []string{`"name":"orders"`, `"version":1`, `"checkout"`}},
		{name: "create key twice", method: http.MethodPost, path: "/v1/kms/keys", headers: admin, body: js(map[string]any{"name": "orders"}), status: http.StatusConflict, code: "key_exists"},
		{name: "create bad key", method: http.MethodPost, path: "/v1/kms/keys", headers: admin, body: js(map[string]any{"name": "Orders!"}), status: http.StatusBadRequest},
		{name: "create key, unknown field", method: http.MethodPost, path: "/v1/kms/keys", headers: admin, body: []byte(`{"name":"x","material":"` + value + `"}`), status: http.StatusBadRequest, absent: []string{value}},
		{name: "encrypt", method: http.MethodPost, path: "/v1/kms/orders/encrypt", headers: encH,
			body: js(map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(value)), "context": map[string]string{"order": "42"}}), status: http.StatusOK,
			contains: []string{`"ciphertext":`, `"version":1`}, absent: []string{value, base64.StdEncoding.EncodeToString([]byte(value))},
			check: func(t *testing.T, _ *http.Response, body []byte) {
				var r struct{ Ciphertext string }
				_ = json.Unmarshal(body, &r)
				ciphertext = r.Ciphertext
			}},
		{name: "encrypt without the scope", method: http.MethodPost, path: "/v1/kms/orders/encrypt", headers: decH,
			body: js(map[string]any{"plaintext": "aGk="}), status: http.StatusForbidden},
		{name: "encrypt with an unknown key", method: http.MethodPost, path: "/v1/kms/nope/encrypt", headers: encH,
			body: js(map[string]any{"plaintext": "aGk="}), status: http.StatusForbidden},
		{name: "encrypt, bad base64", method: http.MethodPost, path: "/v1/kms/orders/encrypt", headers: encH,
			body: js(map[string]any{"plaintext": "***"}), status: http.StatusBadRequest},
		{name: "generate data key", method: http.MethodPost, path: "/v1/kms/orders/generate-data-key", headers: encH,
			body: js(map[string]any{"bytes": 16}), status: http.StatusOK, contains: []string{`"plaintext":`, `"ciphertext":`}},
		{name: "generate data key too big", method: http.MethodPost, path: "/v1/kms/orders/generate-data-key", headers: encH,
			body: js(map[string]any{"bytes": 4096}), status: http.StatusBadRequest},
		{name: "list keys", path: "/v1/kms/keys", headers: admin, status: http.StatusOK, contains: []string{`"orders"`}},
		{name: "rotate key", method: http.MethodPost, path: "/v1/kms/keys/orders/rotate", headers: admin, status: http.StatusOK, contains: []string{`"version":2`}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { s.run(t, a) })
	}
	decrypt := func(name string, h http.Header, ct string, cctx map[string]string, status int, contains ...string) {
		scenario{name: name, method: http.MethodPost, path: "/v1/kms/orders/decrypt", headers: h,
			body: js(map[string]any{"ciphertext": ct, "context": cctx}), status: status, contains: contains}.run(t, a)
	}
	want := base64.StdEncoding.EncodeToString([]byte(value))
	decrypt("decrypt after the key's rotation", decH, ciphertext, map[string]string{"order": "42"}, http.StatusOK, want)
	decrypt("decrypt without the scope", encH, ciphertext, map[string]string{"order": "42"}, http.StatusForbidden)
	decrypt("decrypt with another context", decH, ciphertext, map[string]string{"order": "43"}, http.StatusBadRequest)
	decrypt("decrypt garbage", decH, "AAAA", nil, http.StatusBadRequest)
}

// TestMasterKeyRotation: a restart with a new master key and the old one
// as previous re-seals everything the old one sealed (secrets, auth
// signing keys, the stored AWS key, the presigning key), so that the next
// restart, with the new key alone, still has it all: the secret's value,
// the users' tokens, the S3 API's key pair.
func TestMasterKeyRotation(t *testing.T) {
	t.Parallel()
	g := buildGuests(t)
	k1, k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	cfg := newConfig(t)
	cfg.S3Addr = "127.0.0.1:0"
	ctx := context.Background()
	start := func(master, previous string) *App {
		t.Helper()
		cfg.MasterKey, cfg.MasterKeyPrevious = master, previous
		a := New(cfg, nil)
		if err := a.Start(ctx); err != nil {
			_ = a.Close(ctx)
			t.Fatalf("start with master key %s...: %v", master[:4], err)
		}
		return a
	}
	do := func(a *App, method, path, token string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, a.URL()+path, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := start(k1, "")
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = "", "" // from now on, the stored pair
	if st, body := do(a, "PUT", "/v1/secrets/SECRET_DB", testKey, []byte("hunter2")); st != 200 {
		t.Fatalf("set secret: %d %s", st, body)
	}
	st, body := do(a, "POST", "/v1/auth/signup", "", []byte(`{"email":"ann@example.com","password":"correct horse battery"}`))
	if st != 201 {
		t.Fatalf("signup: %d %s", st, body)
	}
	var tk struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tk); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	a = start(k2, k1) // the rotation pass runs at start
	st, body = do(a, "POST", "/v1/secrets/rotate-master-key", testKey, nil)
	if st != 200 || !strings.Contains(body, `"platform_keys":0`) || !strings.Contains(body, `"secrets":0`) {
		t.Fatalf("a second rotation pass found stale keys left by the first: %d %s", st, body)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	a = start(k2, "") // the old key is gone
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	if st, body := do(a, "GET", "/v1/auth/me", tk.AccessToken, nil); st != 200 || !strings.Contains(body, "ann@example.com") {
		t.Errorf("a token signed before the rotation: %d %s", st, body)
	}
	c := s3Client(t, a.S3URL(), nil, testAWSKeyID, testAWSSecret)
	if _, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Errorf("the stored AWS key pair after the rotation: %v", err)
	}
	ta := &testApp{App: a, t: t, cfg: cfg, base: a.URL(), c: client.New(a.URL(), testKey), hc: &http.Client{Timeout: 30 * time.Second}}
	ta.deploy("fn", g.sdk, function.Spec{Contract: function.ContractSDK, Secrets: []string{"SECRET_DB"}})
	if st, body := do(a, "GET", "/fn/fn/secret?SECRET_DB", "", nil); st != 200 || body != "hunter2" {
		t.Errorf("the secret after the rotation: %d %q", st, body)
	}
}
