package route

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Document is how a table is stored and sent: {"routes": [...]}.
type Document struct {
	Routes []Route `json:"routes"`
}

// Encode renders routes as a Document.
func Encode(routes []Route) (string, error) {
	if routes == nil {
		routes = []Route{}
	}
	b, err := json.Marshal(Document{Routes: routes})
	return string(b), err
}

// Decode reads a Document; "" is the empty table.
func Decode(data string) ([]Route, error) {
	if data == "" {
		return []Route{}, nil
	}
	var d Document
	dec := json.NewDecoder(bytes.NewReader([]byte(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if d.Routes == nil {
		d.Routes = []Route{}
	}
	return d.Routes, nil
}

// Syncer keeps the table a node serves in step with the stored one: the
// table is stored whole as one value, so every node that shares the store
// serves the same table once it has read it. Replace stores a new table
// and serves it at once; Run reads the stored one every interval and
// compiles it again only when its bytes changed.
type Syncer struct {
	// Load returns the stored Document, "" when none is stored.
	Load func(ctx context.Context) (string, error)
	// Save stores a Document.
	Save func(ctx context.Context, data string) error
	// Set serves a compiled table (the gateway's SetRoutes).
	Set func(*Table)
	Log *slog.Logger

	mu   sync.Mutex // orders Replace and Sync, so the served table is the last stored
	last string     // the Document the served table was compiled from
}

// Replace compiles routes, stores them and serves them. A table that does
// not compile is neither stored nor served; its error is a *Error.
func (s *Syncer) Replace(ctx context.Context, routes []Route) (*Table, error) {
	t, err := Compile(routes)
	if err != nil {
		return nil, err
	}
	data, err := Encode(t.Routes())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Save(ctx, data); err != nil {
		return nil, fmt.Errorf("store routes: %w", err)
	}
	s.last = data
	s.Set(t)
	return t, nil
}

// Stored returns the stored table.
func (s *Syncer) Stored(ctx context.Context) ([]Route, error) {
	data, err := s.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	routes, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("the stored routes are corrupt: %w", err)
	}
	return routes, nil
}

// Sync serves the stored table if it changed since the last Sync or
// Replace. A stored table that no longer compiles (say, after an upgrade
// tightened the rules) is reported and the served one kept.
func (s *Syncer) Sync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.Load(ctx)
	if err != nil {
		return fmt.Errorf("read routes: %w", err)
	}
	if data == s.last {
		return nil
	}
	routes, err := Decode(data)
	if err != nil {
		return fmt.Errorf("the stored routes are corrupt: %w", err)
	}
	t, err := Compile(routes)
	if err != nil {
		return fmt.Errorf("the stored routes don't compile: %w", err)
	}
	s.last = data
	s.Set(t)
	return nil
}

// Run calls Sync every interval until ctx ends, logging what fails.
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.Sync(ctx); err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Warn("reload routes", "err", err)
		}
	}
}
