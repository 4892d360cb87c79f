package storetest

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

func asyncState(id, status string, attempts int, seq uint64) function.AsyncInvocation {
	at := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	return function.AsyncInvocation{
		ID: id, Project: "p", Function: "f", Trigger: function.TriggerAsync, Status: status,
		Attempts: attempts, AcceptedAt: at, UpdatedAt: at.Add(time.Duration(attempts) * time.Second), Seq: seq,
	}
}

func getAsync(t *testing.T, s store.Store, id string) function.AsyncInvocation {
	t.Helper()
	a, err := s.GetAsync(t.Context(), "p", id)
	if err != nil {
		t.Fatalf("GetAsync %s: %v", id, err)
	}
	return a
}

// testAsyncRoundTrip: a final state keeps its result, headers and body.
func testAsyncRoundTrip(t *testing.T, s store.Store) {
	want := asyncState("a1", function.StatusOK, 1, 7)
	want.Qualifier, want.LastAttempt = "3", "rec1"
	want.Result = &function.AsyncResult{Status: 201, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("done\x00\xff")}
	if err := s.PutAsync(t.Context(), []function.AsyncInvocation{want}); err != nil {
		t.Fatal(err)
	}
	if got := getAsync(t, s, "a1"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := s.GetAsync(t.Context(), "other", "a1"); err == nil {
		t.Error("another project sees the state")
	}
	_, err := s.GetAsync(t.Context(), "p", "nope")
	wantNotFound(t, "GetAsync", err)
}

// testAsyncRank: states never move an invocation back, whatever order
// they are written in; a redrive's later attempts move it on.
func testAsyncRank(t *testing.T, s store.Store) {
	put := func(states ...function.AsyncInvocation) {
		t.Helper()
		if err := s.PutAsync(t.Context(), states); err != nil {
			t.Fatal(err)
		}
	}
	put(asyncState("a2", function.StatusRunning, 1, 1))
	put(asyncState("a2", function.StatusQueued, 0, 1)) // the queued state, written late
	if got := getAsync(t, s, "a2"); got.Status != function.StatusRunning {
		t.Fatalf("after a late queued: %s, want running", got.Status)
	}
	put(asyncState("a2", function.StatusRetrying, 1, 1), asyncState("a2", function.StatusRunning, 2, 1),
		asyncState("a2", function.StatusDeadLettered, 2, 1))
	put(asyncState("a2", function.StatusRunning, 2, 1)) // a duplicate of an earlier state
	if got := getAsync(t, s, "a2"); got.Status != function.StatusDeadLettered || got.Attempts != 2 {
		t.Fatalf("got %s after %d attempts, want dead_lettered after 2", got.Status, got.Attempts)
	}
	put(asyncState("a2", function.StatusRunning, 3, 9)) // redriven: a new message
	if got := getAsync(t, s, "a2"); got.Status != function.StatusRunning || got.Seq != 9 {
		t.Fatalf("after a redrive: %s seq %d, want running seq 9", got.Status, got.Seq)
	}
}
