package docdb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/masterkey"
	"github.com/hostless/hostless/internal/store"
	"github.com/hostless/hostless/internal/store/postgres"
	"github.com/hostless/hostless/internal/store/sqlite"
)

// The benchmarks drive the real HTTP API with 16 concurrent clients, a
// signed-in user's token and the owner rule in force, against SQLite (and
// PostgreSQL when HOSTLESS_TEST_POSTGRES is set), and a bare net/http
// handler doing the same work on the same database file (decode the JSON,
// insert or select the row) in the same run, for a ratio.
//
//	go test -run '^$' -bench . -benchtime 5000x ./internal/baas/docdb/

const benchClients = 16

const benchSpec = `{
	"indexes": ["owner_id", "priority"],
	"rules": {
		"list": "resource.owner_id == auth.id",
		"get": "resource.owner_id == auth.id",
		"create": "request.data.owner_id == auth.id"
	}
}`

type benchEnv struct {
	url    string
	token  string
	userID string
	client *http.Client
	dir    string
}

func openBenchStore(b *testing.B, backend string) (store.Store, string) {
	ctx := context.Background()
	dir := b.TempDir()
	switch backend {
	case "sqlite":
		st, err := sqlite.Open(ctx, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st, dir
	case "postgres":
		url := os.Getenv("HOSTLESS_TEST_POSTGRES")
		if url == "" {
			b.Skip("HOSTLESS_TEST_POSTGRES is not set")
		}
		schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
		if err := postgres.CreateSchema(ctx, url, schema); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = postgres.DropSchema(context.Background(), url, schema) })
		st, err := postgres.Open(ctx, url+sep(url)+"search_path="+schema+"&pool_max_conns=16")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st, dir
	}
	b.Fatalf("backend %s", backend)
	return nil, ""
}

func sep(url string) string {
	if bytes.ContainsRune([]byte(url), '?') {
		return "&"
	}
	return "?"
}

func newBenchEnv(b *testing.B, backend string) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st, dir := openBenchStore(b, backend)
	raw := make([]byte, 32)
	rand.Read(raw)
	mk, _ := masterkey.New(raw)
	off := auth.RPS{Burst: -1}
	as := auth.New(auth.Config{Store: st, Sealer: mk, AdminKey: func(c string) bool { return c == adminKey },
		Requests: auth.RequestLimits{PerIP: off, PerUser: off, PerKey: off}})
	if err := as.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(as.Close)
	ds := docdb.New(docdb.Config{Store: st})
	if err := ds.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ds.Close)
	if _, err := ds.PutCollection(ctx, "todos", mustSpec(b, benchSpec)); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	ds.Register(mux, as, nil)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	tk, err := as.Signup(ctx, "bench@example.com", "correct horse battery", "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{url: srv.URL, token: tk.AccessToken, userID: tk.User.ID, client: benchClient(), dir: dir}
}

func mustSpec(b *testing.B, s string) docdb.Spec {
	var spec docdb.Spec
	if err := json.Unmarshal([]byte(s), &spec); err != nil {
		b.Fatal(err)
	}
	return spec
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// run sends n requests over benchClients goroutines and reports req/s.
func run(b *testing.B, n int, req func(i int) (*http.Request, int)) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	done := make(chan struct{})
	cl := benchClient()
	b.ResetTimer()
	start := time.Now()
	for range benchClients {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r, want := req(i)
				res, err := cl.Do(r)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					failed.Store(fmt.Sprintf("status %d, want %d", res.StatusCode, want))
					return
				}
			}
		}()
	}
	for range benchClients {
		<-done
	}
	el := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	b.ReportMetric(float64(n)/el.Seconds(), "req/s")
}

func (e *benchEnv) create(i int) (*http.Request, int) {
	body := fmt.Sprintf(`{"title":"task %d","owner_id":%q,"priority":%d,"done":false}`, i, e.userID, i%10)
	r, _ := http.NewRequest("POST", e.url+"/v1/db/todos", bytes.NewReader([]byte(body)))
	r.Header.Set("Authorization", "Bearer "+e.token)
	r.Header.Set("Content-Type", "application/json")
	return r, http.StatusCreated
}

func BenchmarkDocCreate(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := newBenchEnv(b, backend)
			run(b, b.N, e.create)
		})
	}
}

// seed creates n documents of the user through the store directly.
func seed(b *testing.B, e *benchEnv, n int) []string {
	ids := make([]string, n)
	run(b, n, func(i int) (*http.Request, int) { return e.create(i) })
	page := e.url + "/v1/db/todos?limit=1000&fields=priority"
	cursor := ""
	got := 0
	for got < n {
		u := page
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		r, _ := http.NewRequest("GET", u, nil)
		r.Header.Set("Authorization", "Bearer "+e.token)
		res, err := e.client.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Documents []struct {
				ID string `json:"id"`
			} `json:"documents"`
			Next string `json:"next_cursor"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range out.Documents {
			if got < n {
				ids[got] = d.ID
				got++
			}
		}
		if out.Next == "" {
			break
		}
		cursor = out.Next
	}
	if got != n {
		b.Fatalf("seeded %d, listed %d", n, got)
	}
	return ids
}

func BenchmarkDocGet(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := newBenchEnv(b, backend)
			ids := seed(b, e, 2000)
			run(b, b.N, func(i int) (*http.Request, int) {
				r, _ := http.NewRequest("GET", e.url+"/v1/db/todos/"+ids[i%len(ids)], nil)
				r.Header.Set("Authorization", "Bearer "+e.token)
				return r, http.StatusOK
			})
		})
	}
}

// BenchmarkDocList lists 50 documents filtered and sorted on an indexed
// field among 100,000 (the owner rule narrows through the owner_id index).
func BenchmarkDocList(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			e := newBenchEnv(b, backend)
			seed(b, e, 100_000)
			run(b, b.N, func(i int) (*http.Request, int) {
				r, _ := http.NewRequest("GET", e.url+fmt.Sprintf("/v1/db/todos?filter=priority%%20%%3D%%3D%%20%d&sort=created_at&limit=50", i%10), nil)
				r.Header.Set("Authorization", "Bearer "+e.token)
				return r, http.StatusOK
			})
		})
	}
}

// BenchmarkBare is the same work on a bare net/http handler: decode the
// JSON and insert the row, or select it by key, on a SQLite file opened
// the way the store opens data.db (WAL, synchronous FULL, one writer).
func BenchmarkBare(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "bare.db")
	w, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	defer w.Close()
	rd, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	if _, err := w.Exec(`CREATE TABLE docs (id TEXT PRIMARY KEY, data TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /docs", func(wr http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(wr, err.Error(), 400)
			return
		}
		data, _ := json.Marshal(m)
		id := function.NewID(time.Now())
		if _, err := w.Exec(`INSERT INTO docs (id, data) VALUES (?, ?)`, id, string(data)); err != nil {
			http.Error(wr, err.Error(), 500)
			return
		}
		wr.Header().Set("Content-Type", "application/json")
		wr.WriteHeader(http.StatusCreated)
		fmt.Fprintf(wr, `{"id":%q,%s`, id, data[1:])
	})
	mux.HandleFunc("GET /docs/{id}", func(wr http.ResponseWriter, r *http.Request) {
		var data string
		if err := rd.QueryRow(`SELECT data FROM docs WHERE id = ?`, r.PathValue("id")).Scan(&data); err != nil {
			http.Error(wr, err.Error(), 404)
			return
		}
		wr.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(wr, `{"id":%q,%s`, r.PathValue("id"), data[1:])
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ids := make([]string, 0, 2000)
	b.Run("create", func(b *testing.B) {
		run(b, b.N, func(i int) (*http.Request, int) {
			r, _ := http.NewRequest("POST", srv.URL+"/docs", bytes.NewReader([]byte(fmt.Sprintf(`{"title":"task %d","owner_id":"u","priority":%d,"done":false}`, i, i%10))))
			return r, http.StatusCreated
		})
	})
	rows, err := rd.Query(`SELECT id FROM docs LIMIT 2000`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		return
	}
	b.Run("get", func(b *testing.B) {
		run(b, b.N, func(i int) (*http.Request, int) {
			r, _ := http.NewRequest("GET", srv.URL+"/docs/"+ids[i%len(ids)], nil)
			return r, http.StatusOK
		})
	})
}
