package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

var docdbTests = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	{"DocDB/collections", testCollections},
	{"DocDB/crud", testDocCRUD},
	{"DocDB/batch-atomic", testDocBatchAtomic},
	{"DocDB/if-version", testDocIfVersion},
	{"DocDB/max-docs", testDocMaxDocs},
	{"DocDB/list", testDocList},
	{"DocDB/list-bad-cursor", testDocListBadCursor},
	{"DocDB/changes", testDocChanges},
	{"DocDB/concurrent-updates", testDocConcurrentUpdates},
}

func putColl(t *testing.T, s store.Store, project, name string, indexes ...[]string) {
	t.Helper()
	if _, err := s.PutCollection(context.Background(), store.Collection{Project: project, Name: name, Spec: json.RawMessage(`{}`),
		Indexes: indexes, CreatedAt: base, UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, s store.Store, project, coll, id, data string) store.Document {
	t.Helper()
	ds, err := s.WriteDocuments(context.Background(), project, []store.DocWrite{{Op: store.DocCreated, Collection: coll, ID: id, Data: json.RawMessage(data)}}, base)
	if err != nil {
		t.Fatalf("create %s/%s: %v", coll, id, err)
	}
	return ds[0]
}

// sameJSON compares JSON texts by value (jsonb reorders keys).
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %s is not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func testCollections(t *testing.T, s store.Store) {
	ctx := context.Background()
	created, err := s.PutCollection(ctx, store.Collection{Project: projA, Name: "todos", Spec: json.RawMessage(`{"rules":{"get":"true"}}`),
		Indexes: [][]string{{"owner"}, {"meta", "team"}}, CreatedAt: base, UpdatedAt: base})
	if err != nil || !created {
		t.Fatalf("PutCollection = %v, %v; want created", created, err)
	}
	later := base.Add(time.Minute)
	created, err = s.PutCollection(ctx, store.Collection{Project: projA, Name: "todos", Spec: json.RawMessage(`{"rules":{}}`),
		Indexes: [][]string{{"owner"}}, CreatedAt: later, UpdatedAt: later})
	if err != nil || created {
		t.Fatalf("PutCollection again = %v, %v; want replaced", created, err)
	}
	c, err := s.GetCollection(ctx, projA, "todos")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "spec", c.Spec, []byte(`{"rules":{}}`))
	if !reflect.DeepEqual(c.Indexes, [][]string{{"owner"}}) || !c.CreatedAt.Equal(base) || !c.UpdatedAt.Equal(later) || c.Count != 0 {
		t.Fatalf("GetCollection = %+v", c)
	}
	putColl(t, s, projA, "notes")
	putColl(t, s, projB, "other")
	cs, err := s.ListCollections(ctx, projA)
	if err != nil || len(cs) != 2 || cs[0].Name != "notes" || cs[1].Name != "todos" {
		t.Fatalf("ListCollections = %+v, %v", cs, err)
	}
	create(t, s, projA, "notes", "n1", `{"a":1}`)
	if err := s.DeleteCollection(ctx, projA, "notes"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "DeleteCollection twice", s.DeleteCollection(ctx, projA, "notes"))
	_, err = s.GetCollection(ctx, projA, "notes")
	wantNotFound(t, "GetCollection after delete", err)
	// Its documents went with it: a new collection of that name is empty.
	putColl(t, s, projA, "notes")
	_, err = s.GetDocument(ctx, projA, "notes", "n1")
	wantNotFound(t, "a document of a deleted collection", err)
}

func testDocCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "todos")
	d := create(t, s, projA, "todos", "t1", `{"title":"milk","done":false,"n":1.5}`)
	if d.Version != 1 || !d.CreatedAt.Equal(base) || !d.UpdatedAt.Equal(base) {
		t.Fatalf("created %+v", d)
	}
	got, err := s.GetDocument(ctx, projA, "todos", "t1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "data", got.Data, []byte(`{"title":"milk","done":false,"n":1.5}`))
	if got.Version != 1 || got.ID != "t1" || got.Collection != "todos" || !got.CreatedAt.Equal(base) {
		t.Fatalf("GetDocument = %+v", got)
	}
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocCreated, Collection: "todos", ID: "t1", Data: json.RawMessage(`{}`)}}, base); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create a taken id = %v, want ErrConflict", err)
	}
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocCreated, Collection: "nope", ID: "x", Data: json.RawMessage(`{}`)}}, base); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("create in a missing collection = %v, want ErrNotFound", err)
	}
	later := base.Add(time.Second)
	ds, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocUpdated, Collection: "todos", ID: "t1",
		Change: func(cur store.Document) (json.RawMessage, error) {
			sameJSON(t, "Change sees", cur.Data, []byte(`{"title":"milk","done":false,"n":1.5}`))
			return json.RawMessage(`{"title":"milk","done":true}`), nil
		}}}, later)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Version != 2 || !ds[0].UpdatedAt.Equal(later) || !ds[0].CreatedAt.Equal(base) {
		t.Fatalf("updated %+v", ds[0])
	}
	got, _ = s.GetDocument(ctx, projA, "todos", "t1")
	sameJSON(t, "after update", got.Data, []byte(`{"title":"milk","done":true}`))
	if got.Version != 2 || !got.UpdatedAt.Equal(later) {
		t.Fatalf("after update %+v", got)
	}
	checked := false
	ds, err = s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocDeleted, Collection: "todos", ID: "t1",
		Check: func(cur store.Document) error { checked = cur.Version == 2; return nil }}}, later)
	if err != nil || !checked {
		t.Fatalf("delete = %v, check saw version 2: %v", err, checked)
	}
	sameJSON(t, "deleted doc", ds[0].Data, []byte(`{"title":"milk","done":true}`))
	_, err = s.GetDocument(ctx, projA, "todos", "t1")
	wantNotFound(t, "GetDocument after delete", err)
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocDeleted, Collection: "todos", ID: "t1"}}, later); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice = %v, want ErrNotFound", err)
	}
	_, err = s.GetDocument(ctx, projB, "todos", "t1")
	wantNotFound(t, "another project's document", err)
}

func testDocBatchAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "a")
	putColl(t, s, projA, "b")
	create(t, s, projA, "a", "x", `{"v":1}`)
	boom := errors.New("boom")
	_, err := s.WriteDocuments(ctx, projA, []store.DocWrite{
		{Op: store.DocCreated, Collection: "b", ID: "y", Data: json.RawMessage(`{}`)},
		{Op: store.DocUpdated, Collection: "a", ID: "x", Change: func(store.Document) (json.RawMessage, error) { return json.RawMessage(`{"v":2}`), nil }},
		{Op: store.DocDeleted, Collection: "a", ID: "x", Check: func(store.Document) error { return boom }},
	}, base)
	if !errors.Is(err, boom) {
		t.Fatalf("batch with a failing check = %v, want boom", err)
	}
	_, err = s.GetDocument(ctx, projA, "b", "y")
	wantNotFound(t, "a create of a failed batch", err)
	got, _ := s.GetDocument(ctx, projA, "a", "x")
	sameJSON(t, "an update of a failed batch", got.Data, []byte(`{"v":1}`))
	if c, _ := s.GetCollection(ctx, projA, "b"); c.Count != 0 {
		t.Fatalf("count after a failed batch = %d", c.Count)
	}
	ds, err := s.WriteDocuments(ctx, projA, []store.DocWrite{
		{Op: store.DocCreated, Collection: "b", ID: "y", Data: json.RawMessage(`{}`)},
		{Op: store.DocCreated, Collection: "b", ID: "z", Data: json.RawMessage(`{}`)},
		{Op: store.DocDeleted, Collection: "a", ID: "x"},
	}, base)
	if err != nil || len(ds) != 3 {
		t.Fatalf("batch = %d docs, %v", len(ds), err)
	}
	if c, _ := s.GetCollection(ctx, projA, "b"); c.Count != 2 {
		t.Fatalf("count = %d, want 2", c.Count)
	}
	if c, _ := s.GetCollection(ctx, projA, "a"); c.Count != 0 {
		t.Fatalf("count of a = %d, want 0", c.Count)
	}
}

func testDocIfVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "c")
	create(t, s, projA, "c", "x", `{}`)
	up := func(v int64) error {
		_, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocUpdated, Collection: "c", ID: "x", IfVersion: v,
			Change: func(store.Document) (json.RawMessage, error) { return json.RawMessage(`{"k":1}`), nil }}}, base)
		return err
	}
	if err := up(1); err != nil {
		t.Fatal(err)
	}
	if err := up(1); !errors.Is(err, store.ErrVersionMismatch) {
		t.Fatalf("update at a stale version = %v, want ErrVersionMismatch", err)
	}
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocDeleted, Collection: "c", ID: "x", IfVersion: 1}}, base); !errors.Is(err, store.ErrVersionMismatch) {
		t.Fatalf("delete at a stale version = %v, want ErrVersionMismatch", err)
	}
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocDeleted, Collection: "c", ID: "x", IfVersion: 2}}, base); err != nil {
		t.Fatal(err)
	}
}

func testDocMaxDocs(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "small")
	for i := range 3 {
		_, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocCreated, Collection: "small", ID: fmt.Sprint(i), Data: json.RawMessage(`{}`), MaxDocs: 2}}, base)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, store.ErrCollectionFull) {
			t.Fatalf("third create with MaxDocs 2 = %v, want ErrCollectionFull", err)
		}
	}
}

func testDocList(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "tasks", []string{"owner"})
	putColl(t, s, projA, "other")
	create(t, s, projA, "other", "o1", `{"owner":"u1","p":1}`)
	for i := range 10 {
		owner := "u1"
		if i%2 == 1 {
			owner = "u2"
		}
		create(t, s, projA, "tasks", fmt.Sprintf("t%02d", i), fmt.Sprintf(`{"owner":%q,"p":%d}`, owner, 9-i))
	}
	f, err := filter.Parse(`owner == "u1" && p >= 2`)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := filter.ParseSort("p")
	var got []string
	q := store.DocQuery{Project: projA, Collection: "tasks", Filter: f, Sort: keys, Limit: 2, Count: true}
	for pages := 0; ; pages++ {
		page, err := s.ListDocuments(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 && (page.Count == nil || *page.Count != 4) {
			t.Fatalf("count = %v, want 4", page.Count)
		}
		for _, d := range page.Docs {
			got = append(got, d.ID)
		}
		if page.Next == "" {
			break
		}
		q.After, q.Count = page.Next, false
	}
	// u1 has t00 (p 9), t02 (7), t04 (5), t06 (3); t08 (p 1) fails p >= 2.
	if want := []string{"t06", "t04", "t02", "t00"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	page, err := s.ListDocuments(ctx, store.DocQuery{Project: projA, Collection: "tasks", Limit: 100})
	if err != nil || len(page.Docs) != 10 || page.Next != "" || page.Docs[0].ID != "t00" {
		t.Fatalf("list all = %d docs, next %q, %v", len(page.Docs), page.Next, err)
	}
}

func testDocListBadCursor(t *testing.T, s store.Store) {
	putColl(t, s, projA, "tasks")
	_, err := s.ListDocuments(context.Background(), store.DocQuery{Project: projA, Collection: "tasks", After: "!!not a cursor"})
	if !errors.Is(err, function.ErrInvalid) {
		t.Fatalf("a bad cursor = %v, want ErrInvalid", err)
	}
}

func testDocChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "c")
	last, err := s.LastChange(ctx, projA)
	if err != nil || last != 0 {
		t.Fatalf("LastChange of an empty log = %d, %v", last, err)
	}
	create(t, s, projA, "c", "x", `{"v":1}`)
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocUpdated, Collection: "c", ID: "x",
		Change: func(store.Document) (json.RawMessage, error) { return json.RawMessage(`{"v":2}`), nil }}}, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocDeleted, Collection: "c", ID: "x"}}, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	putColl(t, s, projB, "c")
	create(t, s, projB, "c", "y", `{}`)
	cs, err := s.ChangesSince(ctx, projA, 0, 10)
	if err != nil || len(cs) != 3 {
		t.Fatalf("ChangesSince = %d changes, %v", len(cs), err)
	}
	ops := []string{cs[0].Op, cs[1].Op, cs[2].Op}
	if !reflect.DeepEqual(ops, []string{store.DocCreated, store.DocUpdated, store.DocDeleted}) || !(cs[0].Seq < cs[1].Seq && cs[1].Seq < cs[2].Seq) {
		t.Fatalf("changes = %+v", cs)
	}
	sameJSON(t, "the delete's document", cs[2].Doc.Data, []byte(`{"v":2}`))
	if cs[1].Doc.Version != 2 || cs[1].Doc.ID != "x" || cs[1].Doc.Collection != "c" {
		t.Fatalf("update change = %+v", cs[1])
	}
	if last, _ := s.LastChange(ctx, projA); last != cs[2].Seq {
		t.Fatalf("LastChange = %d, want %d", last, cs[2].Seq)
	}
	if rest, _ := s.ChangesSince(ctx, projA, cs[0].Seq, 10); len(rest) != 2 {
		t.Fatalf("ChangesSince(first) = %d, want 2", len(rest))
	}
	if err := s.PruneChanges(ctx, base.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rest, _ := s.ChangesSince(ctx, projA, 0, 10); len(rest) != 1 || rest[0].Op != store.DocDeleted {
		t.Fatalf("after pruning: %+v, want the delete alone", rest)
	}
}

func testDocConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	putColl(t, s, projA, "c")
	create(t, s, projA, "c", "n", `{"n":0}`)
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.WriteDocuments(ctx, projA, []store.DocWrite{{Op: store.DocUpdated, Collection: "c", ID: "n",
					Change: func(cur store.Document) (json.RawMessage, error) {
						var v struct{ N int }
						if err := json.Unmarshal(cur.Data, &v); err != nil {
							return nil, err
						}
						return json.Marshal(map[string]int{"n": v.N + 1})
					}}}, base)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.GetDocument(ctx, projA, "c", "n")
	sameJSON(t, "counter", got.Data, []byte(fmt.Sprintf(`{"n":%d}`, workers*each)))
	if got.Version != workers*each+1 {
		t.Fatalf("version = %d, want %d", got.Version, workers*each+1)
	}
}
