package gateway_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
)

// A function whose spec can't be read (the store is down) is not invoked
// as if it were public: its auth mode is unknown, so the call gets 503.
func TestLookupFailureRefusesTheCall(t *testing.T) {
	inv := &fakeInvoker{cors: map[string]*function.CORS{"f": nil}, resp: &function.Response{Status: 200},
		lookupErr: errors.New("database is locked")}
	g := gateway.New(inv, nil, 0)
	mux := http.NewServeMux()
	g.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/fn/f/", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d %v, want 503 with Retry-After", rec.Code, rec.Header())
	}
	if _, n := inv.last(); n != 0 {
		t.Fatal("the function ran")
	}
	// A function that doesn't exist still gets the invoker's 404.
	inv.lookupErr = nil
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/fn/nope/", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("a missing function: %d", rec.Code)
	}
}
