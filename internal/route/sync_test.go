package route

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memStore is a stored Document and how often it was read.
type memStore struct {
	mu    sync.Mutex
	data  string
	fail  error
	reads int
}

func (m *memStore) load(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return m.data, m.fail
}

func (m *memStore) save(_ context.Context, data string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = data
	return m.fail
}

func (m *memStore) put(data string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = data
}

func TestSyncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{}
	var (
		mu     sync.Mutex
		served *Table
		sets   int
	)
	s := &Syncer{Load: st.load, Save: st.save, Set: func(t *Table) {
		mu.Lock()
		defer mu.Unlock()
		served, sets = t, sets+1
	}}
	current := func() (*Table, int) {
		mu.Lock()
		defer mu.Unlock()
		return served, sets
	}

	// Another node stored a table: Sync serves it.
	st.put(`{"routes":[{"method":"GET","path":"/a/{id}","function":"a"}]}`)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tbl, n := current(); n != 1 || tbl.Len() != 1 || tbl.Routes()[0].Path != "/a/{id}" {
		t.Fatalf("after Sync: %d sets, table %+v", n, tbl)
	}
	// Unchanged bytes: nothing is compiled or set again.
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := current(); n != 1 {
		t.Fatalf("an unchanged table was set again (%d sets)", n)
	}

	// Replace stores and serves at once; a bad table changes nothing.
	if _, err := s.Replace(ctx, []Route{{Path: "/b", Function: "b"}}); err != nil {
		t.Fatal(err)
	}
	if tbl, n := current(); n != 2 || tbl.Routes()[0].Path != "/b" || !strings.Contains(st.data, `"/b"`) {
		t.Fatalf("after Replace: %d sets, stored %s", n, st.data)
	}
	_, err := s.Replace(ctx, []Route{{Path: "/x/{a}", Function: "b"}, {Path: "/x/{b}", Function: "c"}})
	var re *Error
	if !errors.As(err, &re) || re.Index != 1 || re.Other != 0 {
		t.Fatalf("Replace of a conflicting table: %v", err)
	}
	if _, n := current(); n != 2 || !strings.Contains(st.data, `"/b"`) {
		t.Fatalf("a refused table was stored or served: %d sets, stored %s", n, st.data)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := current(); n != 2 {
		t.Fatal("Sync after Replace compiled the same table again")
	}

	// A corrupt or uncompilable stored table is reported; the served one stays.
	for _, bad := range []string{`{"routes":[{"path":"/v1/x","function":"a"}]}`, `{"routes":`, `{"rutes":[]}`} {
		st.put(bad)
		if err := s.Sync(ctx); err == nil {
			t.Errorf("Sync of %s: no error", bad)
		}
		if tbl, _ := current(); tbl.Routes()[0].Path != "/b" {
			t.Errorf("Sync of %s replaced the served table", bad)
		}
	}
	// An emptied table is served empty.
	st.put(`{"routes":[]}`)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if tbl, _ := current(); tbl.Len() != 0 {
		t.Fatal("the emptied table still has routes")
	}
	routes, err := s.Stored(ctx)
	if err != nil || routes == nil || len(routes) != 0 {
		t.Fatalf("Stored: %v %v", routes, err)
	}
}

func TestSyncerRun(t *testing.T) {
	t.Parallel()
	st := &memStore{data: `{"routes":[{"path":"/a","function":"a"}]}`}
	got := make(chan *Table, 1)
	s := &Syncer{Load: st.load, Save: st.save, Set: func(t *Table) { got <- t }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 10*time.Millisecond); close(done) }()
	select {
	case tbl := <-got:
		if tbl.Routes()[0].Path != "/a" {
			t.Fatalf("served %+v", tbl.Routes())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run never loaded the stored table")
	}
	cancel()
	<-done
}
