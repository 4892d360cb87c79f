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

var secretTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"Secrets/versions", testSecretVersions},
	{"Secrets/conflict", testSecretConflict},
	{"Secrets/concurrent-set", testSecretConcurrent},
	{"Secrets/delete", testSecretDelete},
	{"Secrets/rewrap", testSecretRewrap},
	{"KMSKeys/versions", testKMSKeyVersions},
	{"KMSKeys/rewrap", testKMSKeyRewrap},
}

func secretAt(project, name string, version int, at time.Time) store.Secret {
	return store.Secret{Project: project, Name: name, Version: version,
		WrappedKey: []byte{1, byte(version), 0, 255}, Ciphertext: []byte{2, byte(version), 0, 255},
		CreatedAt: at, UpdatedAt: at}
}

func testSecretVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetSecret(ctx, projA, "DB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown = %v, want ErrNotFound", err)
	}
	for _, sec := range []store.Secret{secretAt(projA, "DB", 1, base), secretAt(projA, "API_KEY", 1, base), secretAt(projB, "DB", 1, base)} {
		if err := s.PutSecret(ctx, sec); err != nil {
			t.Fatalf("put %s/%s: %v", sec.Project, sec.Name, err)
		}
	}
	v2 := secretAt(projA, "DB", 2, base.Add(time.Minute))
	if err := s.PutSecret(ctx, v2); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSecret(ctx, projA, "DB")
	if err != nil {
		t.Fatal(err)
	}
	want := v2
	want.CreatedAt = base // the first version's
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("get = %+v, want %+v", got, want)
	}
	list, err := s.ListSecrets(ctx, projA)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "API_KEY" || list[1].Name != "DB" || list[1].Version != 2 {
		t.Fatalf("list = %+v, want API_KEY then DB at version 2", list)
	}
	if other, _ := s.GetSecret(ctx, projB, "DB"); other.Version != 1 {
		t.Fatalf("%s's DB = version %d, want 1: projects are apart", projB, other.Version)
	}
}

func testSecretConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.PutSecret(ctx, secretAt(projA, "DB", 2, base)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("version 2 of no secret = %v, want ErrConflict", err)
	}
	if err := s.PutSecret(ctx, secretAt(projA, "DB", 1, base)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 3} {
		if err := s.PutSecret(ctx, secretAt(projA, "DB", v, base)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("version %d after 1 = %v, want ErrConflict", v, err)
		}
	}
	got, _ := s.GetSecret(ctx, projA, "DB")
	if got.Version != 1 {
		t.Fatalf("a refused put changed the secret: version %d", got.Version)
	}
}

// testSecretConcurrent: of writers racing to set the same next version,
// exactly one wins.
func testSecretConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.PutSecret(ctx, secretAt(projA, "DB", 1, base)); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			err := s.PutSecret(ctx, secretAt(projA, "DB", 2, base))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("put = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers set version 2, want 1", wins.Load())
	}
}

func testSecretDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.DeleteSecret(ctx, projA, "DB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown = %v, want ErrNotFound", err)
	}
	if err := s.PutSecret(ctx, secretAt(projA, "DB", 1, base)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret(ctx, projA, "DB"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSecret(ctx, projA, "DB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get deleted = %v", err)
	}
	// Set again, it starts at version 1.
	if err := s.PutSecret(ctx, secretAt(projA, "DB", 1, base)); err != nil {
		t.Fatal(err)
	}
}

func testSecretRewrap(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.RewrapSecret(ctx, projA, "DB", 1, []byte("o"), []byte("w")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rewrap unknown = %v, want ErrNotFound", err)
	}
	for v := 1; v <= 2; v++ {
		if err := s.PutSecret(ctx, secretAt(projA, "DB", v, base)); err != nil {
			t.Fatal(err)
		}
	}
	v1, v2 := secretAt(projA, "DB", 1, base), secretAt(projA, "DB", 2, base)
	if err := s.RewrapSecret(ctx, projA, "DB", 1, v1.WrappedKey, []byte("stale")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rewrap of an old version = %v, want ErrConflict", err)
	}
	// The version it read, but not the data key: deleted and set again
	// at that version meanwhile.
	if err := s.RewrapSecret(ctx, projA, "DB", 2, []byte("another"), []byte("stale")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rewrap over another data key = %v, want ErrConflict", err)
	}
	if err := s.RewrapSecret(ctx, projA, "DB", 2, v2.WrappedKey, []byte("rewrapped")); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetSecret(ctx, projA, "DB")
	if string(got.WrappedKey) != "rewrapped" || got.Version != 2 || !reflect.DeepEqual(got.Ciphertext, secretAt(projA, "DB", 2, base).Ciphertext) {
		t.Fatalf("after rewrap = %+v", got)
	}
}

func testKMSKeyVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetKMSKey(ctx, projA, "orders", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unknown = %v, want ErrNotFound", err)
	}
	keys := []store.KMSKey{
		{Project: projA, Name: "orders", Version: 1, Wrapped: []byte{1, 0, 1}, Functions: []string{"checkout", "refund"}, CreatedAt: base},
		{Project: projA, Name: "orders", Version: 2, Wrapped: []byte{2, 0, 2}, Functions: []string{"checkout"}, CreatedAt: base.Add(time.Hour)},
		{Project: projA, Name: "billing", Version: 1, Wrapped: []byte{3}, CreatedAt: base},
		{Project: projB, Name: "orders", Version: 1, Wrapped: []byte{4}, CreatedAt: base},
	}
	for _, k := range keys {
		if err := s.PutKMSKey(ctx, k); err != nil {
			t.Fatalf("put %+v: %v", k, err)
		}
	}
	if err := s.PutKMSKey(ctx, keys[1]); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("put an existing version = %v, want ErrConflict", err)
	}
	for _, c := range []struct {
		version int
		want    store.KMSKey
	}{{0, keys[1]}, {1, keys[0]}, {2, keys[1]}} {
		got, err := s.GetKMSKey(ctx, projA, "orders", c.version)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Fatalf("get version %d = %+v, %v; want %+v", c.version, got, err, c.want)
		}
	}
	if _, err := s.GetKMSKey(ctx, projA, "orders", 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get version 3 = %v, want ErrNotFound", err)
	}
	list, err := s.ListKMSKeys(ctx, projA)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(list, []store.KMSKey{keys[2], keys[0], keys[1]}) {
		t.Fatalf("list = %+v", list)
	}
}

func testKMSKeyRewrap(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.RewrapKMSKey(ctx, projA, "orders", 1, []byte("w")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rewrap unknown = %v, want ErrNotFound", err)
	}
	k := store.KMSKey{Project: projA, Name: "orders", Version: 1, Wrapped: []byte("old"), CreatedAt: base}
	if err := s.PutKMSKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.RewrapKMSKey(ctx, projA, "orders", 1, []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKMSKey(ctx, projA, "orders", 1)
	if err != nil || string(got.Wrapped) != "new" {
		t.Fatalf("after rewrap = %+v, %v", got, err)
	}
}
