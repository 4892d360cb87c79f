package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/masterkey"
	"github.com/hostless/hostless/internal/store/sqlite"
)

// adminKey is the platform admin key of every test service.
const adminKey = "hl_admin_test_key_0123456789abcdef"

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// env is a real auth service on a real SQLite store, sealed by a real
// master key, served over HTTP on a random port, with a fake clock and a
// debug log kept in a buffer.
type env struct {
	t     testing.TB
	clk   *clock
	st    *sqlite.DB
	mk    *masterkey.Key
	cfg   auth.Config
	svc   *auth.Service
	srv   *httptest.Server
	logs  *syncBuffer
	mu    sync.Mutex
	known []string // secrets: none may appear in a log line or an error body
}

// newEnv starts a service; opts adjust its config before New.
func newEnv(t testing.TB, opts ...func(*auth.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	mk, err := masterkey.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clk: newClock(), st: st, mk: mk, logs: &syncBuffer{}}
	e.secret(adminKey)
	// Registered first, so it runs last: after the server and the service
	// have stopped, the whole log is written.
	t.Cleanup(func() { e.checkLogs() })
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.cfg = auth.Config{
		Store: st, Sealer: mk, Log: log, Now: e.clk.Now,
		AdminKey:        func(c string) bool { return c == adminKey },
		HashConcurrency: 2,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.start()
	return e
}

// start (re)starts the service and its HTTP server on the env's store.
func (e *env) start() {
	e.t.Helper()
	e.svc = auth.New(e.cfg)
	if err := e.svc.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.svc.Register(mux, e.cfg.Log)
	e.srv = httptest.NewServer(mux)
	srv, svc := e.srv, e.svc
	e.t.Cleanup(func() {
		srv.Close()
		svc.Close()
	})
}

// restart stops the service and starts a new one on the same store.
func (e *env) restart() {
	e.t.Helper()
	e.srv.Close()
	e.svc.Close()
	e.start()
}

// secret records a value that must never be logged or shown in an error.
func (e *env) secret(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range s {
		if v != "" {
			e.known = append(e.known, v)
		}
	}
}

func (e *env) secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.known...)
}

func (e *env) checkLogs() {
	logs := e.logs.String()
	for _, s := range e.secrets() {
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret (%.6s...) appears in the log:\n%s", s, logs)
		}
	}
}

func (e *env) reloadKeys() {
	e.t.Helper()
	if err := e.svc.ReloadKeys(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// resp is an HTTP answer.
type resp struct {
	status int
	header http.Header
	body   string
}

// do sends a request with a JSON body (a string is sent as is) and a
// bearer token. An error answer must carry no known secret.
func (e *env) do(method, path string, body any, token string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, body: string(b)}
	if r.status >= 400 {
		for _, s := range e.secrets() {
			if strings.Contains(r.body, s) {
				e.t.Errorf("%s %s: a secret (%.6s...) appears in the error body %s", method, path, s, r.body)
			}
		}
	}
	return r
}

// must is do that wants a status, and decodes the body into out (if not nil).
func (e *env) must(want int, method, path string, body any, token string, out any) resp {
	e.t.Helper()
	r := e.do(method, path, body, token)
	if r.status != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.body, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.body), out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// signup makes an account and returns its tokens.
func (e *env) signup(email, password string) auth.Tokens {
	e.t.Helper()
	e.secret(password)
	var tk auth.Tokens
	e.must(201, "POST", "/v1/auth/signup", map[string]string{"email": email, "password": password}, "", &tk)
	e.secret(tk.AccessToken, tk.RefreshToken)
	return tk
}

func (e *env) login(email, password string) auth.Tokens {
	e.t.Helper()
	e.secret(password)
	var tk auth.Tokens
	e.must(200, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, "", &tk)
	e.secret(tk.AccessToken, tk.RefreshToken)
	return tk
}

type outboxMail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// outbox returns the dev outbox, newest first, read as the admin.
func (e *env) outbox() []outboxMail {
	e.t.Helper()
	var out struct {
		Mail []outboxMail `json:"mail"`
	}
	e.must(200, "GET", "/v1/auth/outbox", nil, adminKey, &out)
	return out.Mail
}

var mailTokenRE = regexp.MustCompile(`\r?\n\r?\n([A-Za-z0-9_-]{20,})\r?\n`)

// mailToken returns the one-time token of the newest mail to addr whose
// subject contains subject, and records it as a secret.
func (e *env) mailToken(addr, subject string) string {
	e.t.Helper()
	for _, m := range e.outbox() {
		if m.To == addr && strings.Contains(m.Subject, subject) {
			tok := tokenInMail(e.t, m.Body)
			e.secret(tok)
			return tok
		}
	}
	e.t.Fatalf("no mail %q to %s in the outbox", subject, addr)
	return ""
}

func tokenInMail(t testing.TB, body string) string {
	t.Helper()
	m := mailTokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token in the mail %q", body)
	}
	return m[1]
}

// signingKeys opens the service's signing keys from the store with the
// master key, as an attacker who stole both could: the tests forge tokens
// with the real key to show which claim each check refuses.
func (e *env) signingKeys() map[string]ed25519.PrivateKey {
	e.t.Helper()
	ks, err := e.st.ListSigningKeys(context.Background(), e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	out := make(map[string]ed25519.PrivateKey)
	for _, k := range ks {
		priv, err := e.mk.Open(k.Sealed, []byte("hostless auth signing key "+k.ID))
		if err != nil {
			e.t.Fatal(err)
		}
		out[k.ID] = priv
	}
	return out
}

// scenario is one API call and what the answer must and must not hold.
type scenario struct {
	name    string
	method  string
	path    string
	body    any
	token   string
	status  int
	want    []string
	notWant []string
}

func (e *env) run(t *testing.T, sc []scenario) {
	t.Helper()
	for _, s := range sc {
		t.Run(s.name, func(t *testing.T) {
			old := e.t
			e.t = t
			defer func() { e.t = old }()
			r := e.do(s.method, s.path, s.body, s.token)
			if r.status != s.status {
				t.Errorf("status = %d, want %d; body %s", r.status, s.status, r.body)
			}
			for _, w := range s.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("body lacks %q: %s", w, r.body)
				}
			}
			for _, w := range s.notWant {
				if strings.Contains(r.body, w) {
					t.Errorf("body has %q: %s", w, r.body)
				}
			}
		})
	}
}
