package storetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/store"
)

var identityTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Identities/link", testLinkIdentity},
	{"Identities/conflict", testIdentityConflict},
	{"Identities/concurrent-link", testIdentityConcurrent},
}

func testLinkIdentity(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetIdentity(ctx, projA, "google", "123"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown = %v, want ErrNotFound", err)
	}
	links := []store.Identity{
		{Project: projA, Provider: "google", Subject: "123", UserID: "u1", Email: "ada@example.com", CreatedAt: base},
		{Project: projA, Provider: "corp", Subject: "ada", UserID: "u1", Email: "ada@corp.example", CreatedAt: base.Add(time.Second)},
		// The same provider and subject in another project is another link.
		{Project: projB, Provider: "google", Subject: "123", UserID: "u9", CreatedAt: base},
		{Project: projA, Provider: "google", Subject: "456", UserID: "u2", CreatedAt: base},
	}
	for _, l := range links {
		if err := s.LinkIdentity(ctx, l); err != nil {
			t.Fatalf("link %+v: %v", l, err)
		}
	}
	got, err := s.GetIdentity(ctx, projA, "google", "123")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, links[0]) {
		t.Errorf("get = %+v, want %+v", got, links[0])
	}
	got, err = s.GetIdentity(ctx, projB, "google", "123")
	if err != nil || got.UserID != "u9" {
		t.Errorf("get in %s = %+v, %v; want u9", projB, got, err)
	}
	// Subjects are matched exactly: providers' IDs are case-sensitive.
	if _, err := s.GetIdentity(ctx, projA, "google", "ABC"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get another subject = %v, want ErrNotFound", err)
	}
	list, err := s.ListIdentities(ctx, projA, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Identity{links[1], links[0]}; !reflect.DeepEqual(list, want) {
		t.Errorf("list = %+v, want %+v", list, want)
	}
	if list, err := s.ListIdentities(ctx, projA, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("list of a user without links = %+v, %v", list, err)
	}
}

func testIdentityConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := store.Identity{Project: projA, Provider: "google", Subject: "123", UserID: "u1", CreatedAt: base}
	if err := s.LinkIdentity(ctx, l); err != nil {
		t.Fatal(err)
	}
	l.UserID = "u2"
	if err := s.LinkIdentity(ctx, l); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second link = %v, want ErrConflict", err)
	}
	got, err := s.GetIdentity(ctx, projA, "google", "123")
	if err != nil || got.UserID != "u1" {
		t.Errorf("after a conflict: %+v, %v; want the first link", got, err)
	}
}

// testIdentityConcurrent: of concurrent links of one subject, exactly one
// wins; the others see ErrConflict.
func testIdentityConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var (
		wg        sync.WaitGroup
		won, lost atomic.Int32
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.LinkIdentity(ctx, store.Identity{Project: projA, Provider: "corp", Subject: "s",
				UserID: string(rune('a' + i)), CreatedAt: base})
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, store.ErrConflict):
				lost.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != 7 {
		t.Errorf("won %d, lost %d; want 1 and 7", won.Load(), lost.Load())
	}
}
