package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// Close while document writes are being grouped and committed: it waits
// for the group in flight (led by a caller's goroutine or carried on in
// the background), and writes that come after it fail instead of racing
// the closed handles.
func TestDocWritesDuringClose(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := db.PutCollection(ctx, store.Collection{Project: "p", Name: "c", Spec: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		n      atomic.Int64
		closed atomic.Bool
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := db.WriteDocuments(ctx, "p", []store.DocWrite{{Op: store.DocCreated, Collection: "c",
					ID: fmt.Sprintf("d%d-%d", g, i), Data: []byte(`{}`)}}, time.Now())
				if err != nil {
					if !closed.Load() {
						t.Errorf("write before Close: %v", err)
					}
					return
				}
				n.Add(1)
			}
		})
	}
	for n.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	closed.Store(true)
	if err := db.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	wg.Wait()
}

// Close waits for a group its leader (a caller's goroutine) is committing:
// the write acknowledged is committed, not cut off by closed handles.
func TestCloseWaitsForTheLeadersGroup(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := db.PutCollection(ctx, store.Collection{Project: "p", Name: "c", Spec: []byte(`{}`), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteDocuments(ctx, "p", []store.DocWrite{{Op: store.DocCreated, Collection: "c", ID: "a", Data: []byte(`{}`)}}, now); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		_, err := db.WriteDocuments(ctx, "p", []store.DocWrite{{Op: store.DocUpdated, Collection: "c", ID: "a",
			Change: func(store.Document) (json.RawMessage, error) {
				close(inside)
				<-release
				return []byte(`{"x":1}`), nil
			}}}, now)
		wrote <- err
	}()
	<-inside
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a group was being committed", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Errorf("the write in flight at Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := db.WriteDocuments(ctx, "p", []store.DocWrite{{Op: store.DocCreated, Collection: "c", ID: "b", Data: []byte(`{}`)}}, now); err == nil {
		t.Error("a write after Close succeeded")
	}
}
