// Package docdb is the backend's document database: collections of JSON
// documents declared with a JSON Schema, indexes and access rules in CEL
// (internal/baas/rules), created, read, replaced, patched, deleted and
// listed over HTTP with a filter language (internal/baas/docdb/filter)
// compiled to parameterized SQL by the store, and watched live over
// Server-Sent Events.
//
// Access: the admin (and an API key with the admin scope) may do
// anything; an API key with a "db:read" / "db:write" scope (or
// "db:<collection>:read", "db:*") reads or writes without rules, as a
// service does; everyone else (signed-in users, anonymous callers,
// functions) goes through the collection's rule for the operation (list,
// get, create, update, delete). An operation without a rule is for admins
// only: closed by default. A list applies what a rule says of every
// document as SQL (an equality with the caller's id narrows the query to
// the caller's documents through an index) and evaluates the rest of the
// rule on each row; a get that the rule denies answers 404, so that a
// rule hides what exists.
//
// Documents are JSON objects of at most a collection's max_document_bytes
// (default 256 KiB), with id, version, created_at and updated_at kept
// beside their fields (those names are reserved). Writes are atomic and
// durable when acknowledged; every write is logged as a change, which
// realtime subscriptions replay from their last event ID after a
// reconnect, and which goes on the bus as db.{collection}.{created,
// updated,deleted} (at most once, like every platform event).
//
// Package docdb must never import the runtimes, the scheduler or the
// store's implementations; SQL lives in the store.
package docdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/baas/docdb/filter"
	"github.com/hostless/hostless/internal/baas/rules"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Limits.
const (
	DefaultMaxDocumentBytes = 256 << 10
	MaxDocumentBytes        = 1 << 20
	DefaultMaxDocuments     = 1_000_000
	MaxSchemaBytes          = 64 << 10
	MaxIndexes              = 16
	MaxBatch                = 100
	MaxIDBytes              = 128
)

// Operations a rule may govern.
var Operations = []string{"list", "get", "create", "update", "delete"}

// Spec is a collection's definition, in the manifest's `collections:`
// and the API's PUT /v1/collections/{name}.
type Spec struct {
	// Schema is a JSON Schema (2020-12 by default) every document's fields
	// must satisfy; empty accepts any object.
	Schema json.RawMessage `json:"schema,omitempty" yaml:"schema,omitempty"`
	// Indexes are field paths ("status", "address.city") the store
	// indexes, for filters and rules that narrow by them.
	Indexes []string `json:"indexes,omitempty" yaml:"indexes,omitempty"`
	// Rules are CEL expressions per operation: list, get, create, update,
	// delete. An operation without one is for admins only.
	Rules map[string]string `json:"rules,omitempty" yaml:"rules,omitempty"`
	// MaxDocuments caps the collection (default 1,000,000).
	MaxDocuments int64 `json:"max_documents,omitempty" yaml:"max_documents,omitempty"`
	// MaxDocumentBytes caps one document's JSON (default 256 KiB, at most
	// 1 MiB).
	MaxDocumentBytes int `json:"max_document_bytes,omitempty" yaml:"max_document_bytes,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidName checks a collection name: a lower-case letter, then lower-case
// letters, digits and _, at most 63 in all.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("collection name %q: use a lower-case letter, then lower-case letters, digits and _ (at most 63)", name)
	}
	return nil
}

// reserved are the names of a document's own fields.
var reserved = map[string]bool{"id": true, "version": true, "created_at": true, "updated_at": true}

// collection is a compiled collection.
type collection struct {
	name    string
	spec    Spec
	schema  *jsonschema.Schema
	rules   map[string]*rules.Rule
	updated time.Time
	loaded  time.Time
}

// noRemoteRefs refuses every $ref outside the schema itself: a schema
// must not make the server read files or URLs.
type noRemoteRefs struct{}

func (noRemoteRefs) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema $ref %q: only references inside the schema are allowed", url)
}

// compile checks a spec and compiles its schema and rules. Errors are
// the client's to fix.
func compile(name string, spec Spec) (*collection, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	c := &collection{name: name, spec: spec, rules: map[string]*rules.Rule{}}
	if len(spec.Schema) > MaxSchemaBytes {
		return nil, fmt.Errorf("schema: at most %d bytes", MaxSchemaBytes)
	}
	if len(spec.Schema) > 0 {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec.Schema))
		if err != nil {
			return nil, fmt.Errorf("schema: not JSON: %w", err)
		}
		jc := jsonschema.NewCompiler()
		jc.UseLoader(noRemoteRefs{})
		if err := jc.AddResource("collection.json", doc); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		if c.schema, err = jc.Compile("collection.json"); err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
	}
	if len(spec.Indexes) > MaxIndexes {
		return nil, fmt.Errorf("indexes: at most %d", MaxIndexes)
	}
	for _, ix := range spec.Indexes {
		p := strings.Split(ix, ".")
		if len(p) > filter.MaxPathLen || slices.ContainsFunc(p, func(s string) bool { return !filter.ValidIdent(s) }) {
			return nil, fmt.Errorf("indexes: %q is not a field path (names of letters, digits and _, joined by dots)", ix)
		}
		if reserved[p[0]] {
			return nil, fmt.Errorf("indexes: %s is indexed already", ix)
		}
	}
	for op, src := range spec.Rules {
		if !slices.Contains(Operations, op) {
			return nil, fmt.Errorf("rules: %q is not an operation (list, get, create, update, delete)", op)
		}
		r, err := rules.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("rules.%s: %w", op, err)
		}
		c.rules[op] = r
	}
	if spec.MaxDocuments < 0 || spec.MaxDocumentBytes < 0 || spec.MaxDocumentBytes > MaxDocumentBytes {
		return nil, fmt.Errorf("max_documents must not be negative; max_document_bytes must be 0 to %d", MaxDocumentBytes)
	}
	if c.spec.MaxDocuments == 0 {
		c.spec.MaxDocuments = DefaultMaxDocuments
	}
	if c.spec.MaxDocumentBytes == 0 {
		c.spec.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	return c, nil
}

// Config configures the service.
type Config struct {
	Project string
	Store   store.DocDB
	Log     *slog.Logger
	// Emit publishes db.{collection}.{op} events; nil drops them.
	Emit func(name string, data []byte)
	// ChangeRetention is how long the change log keeps a change for
	// realtime subscribers to resume from (default 24h).
	ChangeRetention time.Duration
	// Poll is how often the change feed reads the store for changes other
	// nodes made (default 250ms); this node's own writes wake it at once.
	Poll time.Duration
}

// Service is the document database of one project. Safe for concurrent use.
type Service struct {
	cfg Config

	mu    sync.RWMutex
	colls map[string]*collection

	feed *feed
}

// collectionTTL is how long a compiled collection is trusted before the
// store is read again (another node may have changed it).
const collectionTTL = 5 * time.Second

// New allocates a service; Start starts its change feed.
func New(cfg Config) *Service {
	if cfg.Project == "" {
		cfg.Project = function.DefaultProject
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ChangeRetention <= 0 {
		cfg.ChangeRetention = 24 * time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	s := &Service{cfg: cfg, colls: map[string]*collection{}}
	s.feed = newFeed(s)
	return s
}

// Start starts the change feed.
func (s *Service) Start(ctx context.Context) error { return s.feed.start(ctx) }

// Close stops the change feed and ends subscriptions.
func (s *Service) Close() { s.feed.close() }

// PutCollection creates or replaces a collection's definition.
func (s *Service) PutCollection(ctx context.Context, name string, spec Spec) (bool, error) {
	c, err := compile(name, spec)
	if err != nil {
		return false, apierror.BadRequest("%s", err)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return false, err
	}
	var idx [][]string
	for _, ix := range c.spec.Indexes {
		idx = append(idx, strings.Split(ix, "."))
	}
	now := time.Now().UTC()
	created, err := s.cfg.Store.PutCollection(ctx, store.Collection{Project: s.cfg.Project, Name: name, Spec: raw, Indexes: idx,
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return false, err
	}
	c.updated, c.loaded = now, time.Now()
	s.mu.Lock()
	s.colls[name] = c
	s.mu.Unlock()
	return created, nil
}

// CollectionView is a collection as the API shows it.
type CollectionView struct {
	Name      string    `json:"name"`
	Spec      Spec      `json:"spec"`
	Documents int64     `json:"documents"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func viewCollection(c store.Collection) (CollectionView, error) {
	v := CollectionView{Name: c.Name, Documents: c.Count, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if err := json.Unmarshal(c.Spec, &v.Spec); err != nil {
		return v, fmt.Errorf("collection %s: stored spec: %w", c.Name, err)
	}
	return v, nil
}

// Collection returns a collection's definition.
func (s *Service) Collection(ctx context.Context, name string) (CollectionView, error) {
	c, err := s.cfg.Store.GetCollection(ctx, s.cfg.Project, name)
	if errors.Is(err, store.ErrNotFound) {
		return CollectionView{}, collectionNotFound(name)
	}
	if err != nil {
		return CollectionView{}, err
	}
	return viewCollection(c)
}

// Collections lists the collections.
func (s *Service) Collections(ctx context.Context) ([]CollectionView, error) {
	cs, err := s.cfg.Store.ListCollections(ctx, s.cfg.Project)
	if err != nil {
		return nil, err
	}
	out := make([]CollectionView, 0, len(cs))
	for _, c := range cs {
		v, err := viewCollection(c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// DeleteCollection deletes a collection and its documents.
func (s *Service) DeleteCollection(ctx context.Context, name string) error {
	if err := s.cfg.Store.DeleteCollection(ctx, s.cfg.Project, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return collectionNotFound(name)
		}
		return err
	}
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	return nil
}

func collectionNotFound(name string) error {
	return apierror.NotFound("collection_not_found", "no collection named %q", name)
}

// collection returns a compiled collection, from the cache while fresh.
func (s *Service) collection(ctx context.Context, name string) (*collection, error) {
	s.mu.RLock()
	c, ok := s.colls[name]
	s.mu.RUnlock()
	if ok && time.Since(c.loaded) < collectionTTL {
		return c, nil
	}
	if ValidName(name) != nil {
		return nil, collectionNotFound(name)
	}
	sc, err := s.cfg.Store.GetCollection(ctx, s.cfg.Project, name)
	if errors.Is(err, store.ErrNotFound) {
		s.mu.Lock()
		delete(s.colls, name)
		s.mu.Unlock()
		return nil, collectionNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	if ok && sc.UpdatedAt.Equal(c.updated) {
		s.mu.Lock()
		c.loaded = time.Now()
		s.mu.Unlock()
		return c, nil
	}
	var spec Spec
	if err := json.Unmarshal(sc.Spec, &spec); err != nil {
		return nil, fmt.Errorf("collection %s: stored spec: %w", name, err)
	}
	nc, err := compile(name, spec)
	if err != nil {
		return nil, fmt.Errorf("collection %s: stored spec: %w", name, err)
	}
	nc.updated, nc.loaded = sc.UpdatedAt, time.Now()
	s.mu.Lock()
	s.colls[name] = nc
	s.mu.Unlock()
	return nc, nil
}

// rulesAuth is a principal as the rules see it.
func rulesAuth(p auth.Principal) rules.Auth {
	roles, scopes := p.Roles, p.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return rules.Auth{ID: p.ID, Email: p.Email, Roles: roles, Kind: string(p.Kind), Scopes: scopes}
}
