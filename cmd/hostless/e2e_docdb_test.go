package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDocumentsSurviveKill9: documents whose creates were acknowledged
// (201) are all there after the server is killed with -9 mid-write and
// started again, and nothing half-written shows: each document is whole.
func TestDocumentsSurviveKill9(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	srv := serve(t, data, env("HOSTLESS_ADMIN_KEY="+e2eKey))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	do := func(base, method, path, body string) (int, string, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e2eKey)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if st, body, err := do(srv.url, "PUT", "/v1/collections/notes", `{"indexes":["n"]}`); err != nil || st != 201 {
		t.Fatalf("put collection: %d %s %v", st, body, err)
	}
	var (
		acked   sync.Map // id -> n
		count   atomic.Int64
		next    atomic.Int64
		stopped atomic.Bool
		wg      sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for !stopped.Load() {
				n := next.Add(1)
				id := fmt.Sprintf("d%06d", n)
				st, _, err := do(srv.url, "POST", "/v1/db/notes", fmt.Sprintf(`{"id":%q,"n":%d,"text":%q}`, id, n, strings.Repeat("x", 200)))
				if err != nil {
					return // the server is gone
				}
				if st == 201 {
					acked.Store(id, n)
					count.Add(1)
				}
			}
		})
	}
	for count.Load() < 2000 {
		time.Sleep(10 * time.Millisecond)
	}
	srv.stop(syscall.SIGKILL)
	stopped.Store(true)
	wg.Wait()
	t.Logf("%d creates acknowledged before kill -9", count.Load())

	again := serve(t, data, env("HOSTLESS_ADMIN_KEY="+e2eKey))
	missing := 0
	acked.Range(func(k, v any) bool {
		st, body, err := do(again.url, "GET", "/v1/db/notes/"+k.(string), "")
		if err != nil || st != 200 || !strings.Contains(body, fmt.Sprintf(`"n":%d`, v.(int64))) {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged %s after the restart: %d %s %v", k, st, body, err)
			}
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged documents lost", missing, count.Load())
	}
	// The collection's count agrees with its documents.
	st, body, err := do(again.url, "GET", "/v1/db/notes?count=true&limit=1", "")
	if err != nil || st != 200 {
		t.Fatalf("count: %d %s %v", st, body, err)
	}
	var total int64
	if _, err := fmt.Sscanf(body[strings.Index(body, `"count":`)+len(`"count":`):], "%d", &total); err != nil || total < count.Load() {
		t.Fatalf("count %d (%v), at least %d acknowledged", total, err, count.Load())
	}
}
