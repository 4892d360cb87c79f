// Package manifest reads hostless.yaml, the file that says which functions an
// app has and where their code is. Parse checks syntax and every field
// without touching the disk; Load reads the file; CheckCode looks at the code.
//
// Package manifest must never import the store, the runtimes or HTTP: the CLI
// turns a Manifest into deploy requests.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hostless/hostless/internal/function"
)

// Limits on manifests and the code they name.
const (
	MaxManifestBytes = 4 << 20
	MaxCodeBytes     = 256 << 20
	MaxFunctions     = 1000
	// maxErrors bounds how many problems one Parse reports.
	maxErrors = 20
)

// wasmMagic starts every WebAssembly binary module: "\0asm" and version 1.
const wasmMagic = "\x00asm\x01\x00\x00\x00"

// Manifest is a parsed hostless.yaml.
type Manifest struct {
	Dir       string               // absolute directory of the manifest; relative paths start here
	Path      string               // absolute path of the file Load read; empty after Parse
	Functions map[string]*Function // by name
	Order     []string             // function names, sorted
	// Routes is the route table (the whole of it: a deploy replaces the
	// server's table with it) when HasRoutes is set, that is when the
	// manifest has a routes key, even an empty one.
	Routes    []function.Route
	HasRoutes bool
	// Collections are the document database's collections the manifest
	// declares, by name. A deploy creates or updates each; collections on
	// the server that the manifest doesn't name are left alone.
	Collections     map[string]*Collection
	CollectionOrder []string // collection names, sorted
	// Buckets are the buckets a deploy makes sure of, by name.
	Buckets     map[string]*Bucket
	BucketOrder []string // bucket names, sorted
}

// Function is one entry under functions:.
type Function struct {
	Name     string
	Runtime  string
	Code     string // absolute path of the module, or of a process function's directory or .zip
	Contract string
	Handler  string // process functions: "index.handler", or the executable
	Network  string // process functions: none or outbound
	// NetworkAllow are ranges outbound may reach although private.
	NetworkAllow []string
	// AllowedHosts are the hosts a wasm function may call over HTTP.
	AllowedHosts []string
	Memory       int           // MB; 0 means the default
	Timeout      time.Duration // 0 means the default
	Env          map[string]string
	// Secrets name the stored secrets the function gets as variables.
	Secrets []string
	// Buckets grants access to the object storage's buckets, by name:
	// read, write or read-write.
	Buckets map[string]string
	// Concurrency and IdleTimeout: zero values take the platform defaults.
	Concurrency function.Concurrency
	IdleTimeout time.Duration
	// MinInstances are kept warm; 0 scales to zero.
	MinInstances int
	RateLimit    function.RateLimit
	Budget       function.Budget
	Retry        function.Retry
	Schedule     string // cron schedule, or ""
	Timezone     string
	Triggers     []function.Trigger
	CORS         *function.CORS
	Limits       function.Limits
	Auth         string // who may call its URL: public, user, admin or key:SCOPE
	InvokeMode   string // buffered (or "") or stream
	Build        string // shell command that produces Code, or ""
	BuildDir     string // absolute directory Build runs in

	code string // Code as written in the manifest, for messages
}

// topFields are the keys of the manifest itself.
var topFields = []string{"functions", "routes", "collections", "buckets"}

// fields are the keys a function entry accepts, in the order errors are
// reported.
var fields = []string{"runtime", "code", "handler", "contract", "network", "network_allow", "allowed_hosts", "memory", "timeout", "env", "secrets", "concurrency", "idle_timeout", "min_instances", "rate_limit", "budget", "retry", "schedule", "timezone", "triggers", "cors", "limits", "auth", "invoke_mode", "build", "dir", "buckets"}

// concurrencyFields and rateLimitFields are the keys of concurrency: and
// rate_limit:.
var (
	concurrencyFields = []string{"max", "per_instance", "queue_timeout"}
	rateLimitFields   = []string{"rps", "burst", "per_ip_rps", "per_ip_burst"}
	routeFields       = []string{"method", "path", "host", "function", "cors", "auth"}
	limitsFields      = []string{"request", "response", "event"}
	corsFields        = []string{"origins", "methods", "headers", "expose_headers", "credentials", "max_age"}
)

// placeholderCode stands in for the code's hash when Parse validates a
// function with the same rules a deploy applies.
var placeholderCode = "sha256:" + strings.Repeat("0", 64)

// Load reads and parses the manifest at path.
func Load(path string) (*Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load manifest: %s is not a regular file", abs)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	m, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	m.Path = abs
	return m, nil
}

// Parse parses a manifest whose relative paths start at dir. It checks the
// YAML and every field, reporting each problem with the function and field
// it is in, but reads no files. Errors wrap function.ErrInvalid.
func Parse(data []byte, dir string) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: manifest is larger than %d MiB", function.ErrInvalid, MaxManifestBytes>>20)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("manifest directory: %w", err)
	}
	// The document is decoded into a yaml.Node and walked by hand rather
	// than decoded into a struct with KnownFields(true), for two reasons:
	// errors name the function, the field and the line (a struct decode names
	// a Go type and a line), and aliases are never expanded.
	// A yaml.Node keeps an alias as a pointer, and the walk reads bounded
	// scalars from it, so a document that repeats one anchor many times (an
	// alias bomb) costs what its bytes cost, within MaxFunctions functions of
	// MaxEnvVars variables each.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: no functions or collections in manifest", function.ErrInvalid)
	} else if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", function.ErrInvalid, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: manifest has more than one YAML document (remove the '---' separator)", function.ErrInvalid)
	}

	p := parser{m: &Manifest{Dir: dir, Functions: map[string]*Function{}, Collections: map[string]*Collection{}, Buckets: map[string]*Bucket{}}}
	p.manifest(&doc)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if len(p.m.Functions) == 0 && len(p.m.Collections) == 0 && len(p.m.Buckets) == 0 {
		return nil, fmt.Errorf("%w: no functions or collections in manifest", function.ErrInvalid)
	}
	p.m.Order = slices.Sorted(maps.Keys(p.m.Functions))
	p.m.CollectionOrder = slices.Sorted(maps.Keys(p.m.Collections))
	return p.m, nil
}

// parser collects the problems of one manifest.
type parser struct {
	m    *Manifest
	errs []error
	// coll names the collection being parsed: problems outside any
	// function are then reported as the collection's.
	coll string
}

// Error is one problem in a manifest. It wraps function.ErrInvalid.
type Error struct {
	Function   string // "" for a problem outside any function
	Collection string // "" for a problem outside any collection
	Line       int    // 0 when unknown
	Msg        string // names the field
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Function != "" {
		fmt.Fprintf(&b, "function %q: ", short(e.Function))
	}
	if e.Collection != "" {
		fmt.Fprintf(&b, "collection %q: ", short(e.Collection))
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Unwrap returns function.ErrInvalid.
func (e *Error) Unwrap() error { return function.ErrInvalid }

func (p *parser) fail(fn string, n *yaml.Node, format string, args ...any) {
	switch {
	case len(p.errs) < maxErrors:
		line := 0
		if n != nil {
			line = n.Line
		}
		e := &Error{Function: fn, Line: line, Msg: fmt.Sprintf(format, args...)}
		if fn == "" {
			e.Collection = p.coll
		}
		p.errs = append(p.errs, e)
	case len(p.errs) == maxErrors:
		p.errs = append(p.errs, fmt.Errorf("%w: too many problems; stopped after %d", function.ErrInvalid, maxErrors))
	}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null ("key:" with no value).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func (p *parser) manifest(doc *yaml.Node) {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return // Parse reports "no functions in manifest"
	}
	if root.Kind != yaml.MappingNode {
		p.fail("", root, "manifest must be a mapping with a functions key")
		return
	}
	var functions, routes, collections, buckets *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), root.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(topFields, k.Value):
			p.fail("", k, "unknown field %q (accepted: %s)", short(keyName(k)), strings.Join(topFields, ", "))
		case k.Value == "functions" && functions != nil, k.Value == "routes" && p.m.HasRoutes,
			k.Value == "collections" && collections != nil, k.Value == "buckets" && buckets != nil:
			p.fail("", k, "field %q appears twice", k.Value)
		case k.Value == "routes":
			p.m.HasRoutes = true
			routes = v
		case k.Value == "collections":
			collections = k // the key: its line, should the value be null
			p.collections(k, v)
		case k.Value == "buckets":
			buckets = k
			p.buckets(v)
		default:
			functions = resolve(v)
		}
	}
	if p.m.HasRoutes {
		p.m.Routes = p.routes(routes)
	}
	if isNull(functions) {
		return
	}
	if functions.Kind != yaml.MappingNode {
		p.fail("", functions, "functions must be a mapping of function names to functions")
		return
	}
	if len(functions.Content)/2 > MaxFunctions {
		p.fail("", functions, "manifest has %d functions (at most %d)", len(functions.Content)/2, MaxFunctions)
		return
	}
	seen := make(map[string]bool, len(functions.Content)/2)
	for i := 0; i+1 < len(functions.Content); i += 2 {
		k, v := resolve(functions.Content[i]), functions.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			p.fail("", k, "function names must be strings")
			continue
		}
		name := k.Value
		if seen[name] {
			p.fail(name, k, "function defined twice")
			continue
		}
		seen[name] = true
		if err := function.ValidName(name); err != nil {
			p.fail(name, k, "name is not a DNS label (1-63 characters of a-z, 0-9 and '-', not starting or ending with '-')")
			// Keep checking the fields: every problem at once.
		}
		if fn := p.function(name, k, resolve(v)); fn != nil {
			p.m.Functions[name] = fn
		}
	}
}

// keyName renders a key for a message, whatever its kind.
func keyName(k *yaml.Node) string {
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	return "<non-string key>"
}

// function parses one function entry, returning nil if it has problems.
// It reads scalars from the nodes rather than decoding them, with a bound on
// each, so aliases that repeat one big value many times cost nothing.
func (p *parser) function(name string, at, n *yaml.Node) *Function {
	before := len(p.errs)
	fn := &Function{Name: name}
	if isNull(n) {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: at.Line}
	}
	if n.Kind != yaml.MappingNode {
		p.fail(name, n, "must be a mapping of fields (%s)", strings.Join(fields, ", "))
		return nil
	}
	values := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key := keyName(k)
		switch {
		case k.Tag == "!!merge":
			p.fail(name, k, "merge keys (<<) are not supported; repeat the fields")
		case k.Kind != yaml.ScalarNode || !slices.Contains(fields, key):
			p.fail(name, k, "unknown field %q (accepted: %s)", short(key), strings.Join(fields, ", "))
		case values[key] != nil:
			p.fail(name, k, "field %q appears twice", key)
		default:
			values[key] = v // unresolved: messages give the line where it is used
		}
	}

	fn.Runtime = p.scalar(name, "runtime", values, maxNameBytes)
	fn.code = p.scalar(name, "code", values, maxPathBytes)
	fn.Contract = p.scalar(name, "contract", values, maxNameBytes)
	fn.Handler = p.scalar(name, "handler", values, maxNameBytes)
	fn.Network = p.scalar(name, "network", values, maxNameBytes)
	fn.NetworkAllow = p.strings(name, "network_allow", values["network_allow"], function.MaxNetworkAllow)
	fn.AllowedHosts = p.strings(name, "allowed_hosts", values["allowed_hosts"], function.MaxAllowedHosts)
	memory := p.scalar(name, "memory", values, maxNameBytes)
	timeout := p.scalar(name, "timeout", values, maxNameBytes)
	fn.Env = p.env(name, values["env"])
	fn.Secrets = p.strings(name, "secrets", values["secrets"], function.MaxSecrets)
	fn.Buckets = p.functionBuckets(name, values["buckets"])
	fn.Concurrency = p.concurrency(name, values["concurrency"])
	fn.RateLimit = p.rateLimit(name, values["rate_limit"])
	fn.Budget = p.budget(name, values["budget"])
	fn.Retry = p.retry(name, values["retry"])
	fn.Schedule = p.scalar(name, "schedule", values, maxNameBytes)
	fn.Timezone = p.scalar(name, "timezone", values, maxNameBytes)
	fn.Triggers = p.triggers(name, values["triggers"])
	fn.CORS = p.cors(name, "cors", values["cors"])
	fn.Limits = p.limits(name, values["limits"])
	fn.Auth = p.scalar(name, "auth", values, maxNameBytes)
	if err := function.ValidateAuth(fn.Auth); err != nil && fn.Auth != "" {
		p.fail(name, values["auth"], "auth: %s", strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": "))
	}
	fn.InvokeMode = p.scalar(name, "invoke_mode", values, maxNameBytes)
	switch fn.InvokeMode {
	case "", function.InvokeBuffered, function.InvokeStream:
	default:
		p.fail(name, values["invoke_mode"], "invoke_mode %q is not supported (accepted: buffered, stream)", short(fn.InvokeMode))
	}
	if v := p.scalar(name, "idle_timeout", values, maxNameBytes); v != "" {
		fn.IdleTimeout = p.duration(name, "idle_timeout", values["idle_timeout"], v)
	}
	if p.scalar(name, "min_instances", values, maxNameBytes) != "" {
		fn.MinInstances = p.integer(name, "min_instances", values["min_instances"], "")
	}
	fn.Build = p.scalar(name, "build", values, maxBuildBytes)
	dir := p.scalar(name, "dir", values, maxPathBytes)
	if len(p.errs) > before {
		return nil
	}

	if fn.Runtime == "" {
		p.fail(name, at, "runtime is required (accepted: wasm, process, nodejs, python)")
	}
	switch {
	case fn.code == "":
		p.fail(name, at, "code is required: the path of the module (wasm) or of the code's directory or .zip (process, nodejs, python), relative to the manifest")
	case strings.IndexByte(fn.code, 0) >= 0:
		p.fail(name, values["code"], "code %q contains a NUL byte", short(fn.code))
	default:
		fn.Code = abs(p.m.Dir, fn.code)
	}
	switch {
	case strings.IndexByte(dir, 0) >= 0:
		p.fail(name, values["dir"], "dir %q contains a NUL byte", short(dir))
	case dir == "":
		fn.BuildDir = p.m.Dir
	default:
		fn.BuildDir = abs(p.m.Dir, dir)
	}
	if memory != "" {
		fn.Memory = p.integer(name, "memory", values["memory"], " of MB")
	}
	if timeout != "" {
		fn.Timeout = p.duration(name, "timeout", values["timeout"], timeout)
	}
	if len(p.errs) > before {
		return nil
	}
	// One set of rules: the ones a deploy applies to the spec.
	spec := fn.Spec(placeholderCode)
	if err := spec.Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": ")
		p.fail(name, fieldNode(values, msg, at), "%s", msg)
		return nil
	}
	return fn
}

// routes reads the top-level routes: a list of mappings (method, path,
// host, function, cors). Messages name the route by its index.
func (p *parser) routes(at *yaml.Node) []function.Route {
	v := resolve(at)
	if isNull(v) {
		return []function.Route{} // "routes:" empties the table
	}
	if v.Kind != yaml.SequenceNode {
		p.fail("", at, "routes must be a list of mappings, each with a path and a function")
		return nil
	}
	if len(v.Content) > function.MaxRoutes {
		p.fail("", at, "routes has %d entries (at most %d)", len(v.Content), function.MaxRoutes)
		return nil
	}
	out := make([]function.Route, 0, len(v.Content))
	for i, e := range v.Content {
		field := fmt.Sprintf("routes[%d]", i)
		before := len(p.errs)
		values := p.submap("", field, e, routeFields)
		if values == nil {
			if len(p.errs) == before {
				p.fail("", e, "%s must be a mapping with a path and a function", field)
			}
			continue
		}
		str := func(k string, max int) string { return p.scalar("", field+"."+k, values, max) }
		r := function.Route{Method: str("method", maxNameBytes), Path: str("path", function.MaxPathBytes),
			Host: str("host", maxNameBytes), Function: str("function", maxNameBytes), Auth: str("auth", maxNameBytes)}
		r.CORS = p.cors("", field+".cors", values[field+".cors"])
		if len(p.errs) > before {
			continue
		}
		if err := r.Validate(); err != nil {
			msg := strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": ")
			// The message starts with the field it is about: its line.
			f, _, _ := strings.Cut(msg, " ")
			f, _, _ = strings.Cut(f, ".")
			n := values[field+"."+f]
			if n == nil {
				n = e
			}
			p.fail("", n, "%s.%s", field, msg)
			continue
		}
		out = append(out, r)
	}
	return out
}

// cors reads a cors mapping: origins, methods, headers, expose_headers,
// credentials, max_age. The policy's own rules are checked with the spec or
// the route it belongs to.
func (p *parser) cors(fn, field string, at *yaml.Node) *function.CORS {
	values := p.submap(fn, field, at, corsFields)
	if values == nil {
		return nil
	}
	c := &function.CORS{
		Origins:       p.strings(fn, field+".origins", values[field+".origins"], function.MaxCORSEntries),
		Methods:       p.strings(fn, field+".methods", values[field+".methods"], function.MaxCORSEntries),
		Headers:       p.strings(fn, field+".headers", values[field+".headers"], function.MaxCORSEntries),
		ExposeHeaders: p.strings(fn, field+".expose_headers", values[field+".expose_headers"], function.MaxCORSEntries),
	}
	if v := p.scalar(fn, field+".credentials", values, maxNameBytes); v != "" {
		n := resolve(values[field+".credentials"])
		if n.Tag != "!!bool" || n.Decode(&c.Credentials) != nil {
			p.fail(fn, n, "%s.credentials %q must be true or false", field, short(v))
		}
	}
	if v := p.scalar(fn, field+".max_age", values, maxNameBytes); v != "" {
		c.MaxAge = function.Duration(p.duration(fn, field+".max_age", values[field+".max_age"], v))
	}
	return c
}

// limits reads limits: {request, response, event}, sizes such as 6MB.
func (p *parser) limits(fn string, at *yaml.Node) function.Limits {
	var l function.Limits
	values := p.submap(fn, "limits", at, limitsFields)
	size := func(k string) int64 {
		v := p.scalar(fn, "limits."+k, values, maxNameBytes)
		if v == "" {
			return 0
		}
		n, err := function.ParseBytes(v)
		if err != nil {
			p.fail(fn, values["limits."+k], "limits.%s %q is not a size such as 6MB or 256KB", k, short(v))
		}
		return n
	}
	l.Request, l.Response, l.Event = size("request"), size("response"), size("event")
	return l
}

func cloneCORS(c *function.CORS) *function.CORS {
	if c == nil {
		return nil
	}
	d := *c
	d.Origins, d.Methods = slices.Clone(c.Origins), slices.Clone(c.Methods)
	d.Headers, d.ExposeHeaders = slices.Clone(c.Headers), slices.Clone(c.ExposeHeaders)
	return &d
}

// Bounds on single values, checked before anything copies or scans them.
const (
	maxNameBytes  = 256
	maxPathBytes  = 4096
	maxBuildBytes = 64 << 10
)

// scalar returns the value of a scalar field, "" if it is absent or null.
func (p *parser) scalar(fn, field string, values map[string]*yaml.Node, max int) string {
	at := values[field]
	v := resolve(at)
	switch {
	case isNull(v):
		return ""
	case v.Kind != yaml.ScalarNode:
		p.fail(fn, at, "%s must be a single value, not a list or mapping", field)
		return ""
	case len(v.Value) > max:
		p.fail(fn, at, "%s is %d bytes (at most %d)", field, len(v.Value), max)
		return ""
	}
	return v.Value
}

// duration parses the value v of a duration field.
func (p *parser) duration(fn, field string, at *yaml.Node, v string) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(fn, at, "%s %q is not a duration such as \"5s\"", field, short(v))
	}
	return d
}

// integer parses the value of an integer field; a YAML float is refused
// rather than truncated (a float decodes into an int truncated). unit ends
// the message, e.g. " of MB".
func (p *parser) integer(fn, field string, at *yaml.Node, unit string) int {
	var n int
	if v := resolve(at); v.Tag != "!!int" || v.Decode(&n) != nil {
		p.fail(fn, at, "%s %q must be a whole number%s", field, short(v.Value), unit)
	}
	return n
}

// submap reads a mapping field whose keys are among accepted; the values
// are keyed "field.key", as messages name them. It returns nil when the
// field is absent.
func (p *parser) submap(fn, field string, at *yaml.Node, accepted []string) map[string]*yaml.Node {
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.fail(fn, at, "%s must be a mapping (%s)", field, strings.Join(accepted, ", "))
		return nil
	}
	values := map[string]*yaml.Node{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := resolve(v.Content[i])
		key := field + "." + keyName(k)
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(accepted, keyName(k)):
			p.fail(fn, k, "unknown field %s (accepted: %s)", short(key), strings.Join(accepted, ", "))
		case values[key] != nil:
			p.fail(fn, k, "field %s appears twice", key)
		default:
			values[key] = v.Content[i+1]
		}
	}
	return values
}

// concurrency reads the concurrency mapping: max, per_instance, queue_timeout.
func (p *parser) concurrency(fn string, at *yaml.Node) function.Concurrency {
	var c function.Concurrency
	values := p.submap(fn, "concurrency", at, concurrencyFields)
	if p.scalar(fn, "concurrency.max", values, maxNameBytes) != "" {
		c.Max = p.integer(fn, "concurrency.max", values["concurrency.max"], "")
	}
	if p.scalar(fn, "concurrency.per_instance", values, maxNameBytes) != "" {
		c.PerInstance = p.integer(fn, "concurrency.per_instance", values["concurrency.per_instance"], "")
	}
	if q := p.scalar(fn, "concurrency.queue_timeout", values, maxNameBytes); q != "" {
		c.QueueTimeout = function.Duration(p.duration(fn, "concurrency.queue_timeout", values["concurrency.queue_timeout"], q))
	}
	return c
}

// rateLimit reads the rate_limit mapping: rps, burst, per_ip_rps, per_ip_burst.
// budget reads budget: {gb_seconds_per_hour, gb_seconds_per_day}.
func (p *parser) budget(fn string, at *yaml.Node) function.Budget {
	var b function.Budget
	values := p.submap(fn, "budget", at, budgetFields)
	if p.scalar(fn, "budget.gb_seconds_per_hour", values, maxNameBytes) != "" {
		b.GBSecondsPerHour = p.number(fn, "budget.gb_seconds_per_hour", values["budget.gb_seconds_per_hour"])
	}
	if p.scalar(fn, "budget.gb_seconds_per_day", values, maxNameBytes) != "" {
		b.GBSecondsPerDay = p.number(fn, "budget.gb_seconds_per_day", values["budget.gb_seconds_per_day"])
	}
	return b
}

var budgetFields = []string{"gb_seconds_per_hour", "gb_seconds_per_day"}

var (
	retryFields   = []string{"max_attempts", "max_age", "backoff"}
	triggerFields = []string{"type", "url", "subject", "stream", "queue", "topic", "group", "qos", "batch_size",
		"batch_window", "concurrency", "ack_wait", "events"}
)

// retry reads retry: {max_attempts, max_age, backoff}.
func (p *parser) retry(fn string, at *yaml.Node) function.Retry {
	var r function.Retry
	values := p.submap(fn, "retry", at, retryFields)
	if p.scalar(fn, "retry.max_attempts", values, maxNameBytes) != "" {
		n := p.integer(fn, "retry.max_attempts", values["retry.max_attempts"], "")
		r.MaxAttempts = &n
	}
	if v := p.scalar(fn, "retry.max_age", values, maxNameBytes); v != "" {
		r.MaxAge = function.Duration(p.duration(fn, "retry.max_age", values["retry.max_age"], v))
	}
	if v := p.scalar(fn, "retry.backoff", values, maxNameBytes); v != "" {
		r.Backoff = function.Duration(p.duration(fn, "retry.backoff", values["retry.backoff"], v))
	}
	return r
}

// triggers reads triggers: a list of mappings, each with a type and the
// settings of its broker.
func (p *parser) triggers(fn string, at *yaml.Node) []function.Trigger {
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.fail(fn, at, "triggers must be a list of mappings, each with a type (nats, jetstream, amqp, mqtt, redis, events)")
		return nil
	}
	if len(v.Content) > function.MaxTriggers {
		p.fail(fn, at, "triggers has %d entries (at most %d)", len(v.Content), function.MaxTriggers)
		return nil
	}
	out := make([]function.Trigger, 0, len(v.Content))
	for i, e := range v.Content {
		field := fmt.Sprintf("triggers[%d]", i)
		values := p.submap(fn, field, e, triggerFields)
		if values == nil {
			p.fail(fn, e, "%s must be a mapping with a type", field)
			continue
		}
		str := func(k string) string { return p.scalar(fn, field+"."+k, values, maxPathBytes) }
		t := function.Trigger{Type: str("type"), URL: str("url"), Subject: str("subject"), Stream: str("stream"),
			Queue: str("queue"), Topic: str("topic"), Group: str("group")}
		integer := func(k string) int {
			if str(k) == "" {
				return 0
			}
			return p.integer(fn, field+"."+k, values[field+"."+k], "")
		}
		dur := func(k string) function.Duration {
			if s := str(k); s != "" {
				return function.Duration(p.duration(fn, field+"."+k, values[field+"."+k], s))
			}
			return 0
		}
		if str("qos") != "" {
			q := integer("qos")
			t.QoS = &q
		}
		t.BatchSize, t.Concurrency = integer("batch_size"), integer("concurrency")
		t.BatchWindow, t.AckWait = dur("batch_window"), dur("ack_wait")
		t.Events = p.strings(fn, field+".events", values[field+".events"], 16)
		if t.Type == "" {
			p.fail(fn, e, "%s.type is required (nats, jetstream, amqp, mqtt, redis, events)", field)
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) rateLimit(fn string, at *yaml.Node) function.RateLimit {
	var r function.RateLimit
	values := p.submap(fn, "rate_limit", at, rateLimitFields)
	if p.scalar(fn, "rate_limit.rps", values, maxNameBytes) != "" {
		r.RPS = p.number(fn, "rate_limit.rps", values["rate_limit.rps"])
	}
	if p.scalar(fn, "rate_limit.burst", values, maxNameBytes) != "" {
		r.Burst = p.integer(fn, "rate_limit.burst", values["rate_limit.burst"], "")
	}
	if p.scalar(fn, "rate_limit.per_ip_rps", values, maxNameBytes) != "" {
		r.PerIPRPS = p.number(fn, "rate_limit.per_ip_rps", values["rate_limit.per_ip_rps"])
	}
	if p.scalar(fn, "rate_limit.per_ip_burst", values, maxNameBytes) != "" {
		r.PerIPBurst = p.integer(fn, "rate_limit.per_ip_burst", values["rate_limit.per_ip_burst"], "")
	}
	return r
}

// number parses the value of a numeric field (an integer or a decimal).
func (p *parser) number(fn, field string, at *yaml.Node) float64 {
	var f float64
	if v := resolve(at); (v.Tag != "!!int" && v.Tag != "!!float") || v.Decode(&f) != nil || f != f {
		p.fail(fn, at, "%s %q must be a number", field, short(v.Value))
	}
	return f
}

// strings reads a list of at most max short strings.
func (p *parser) strings(fn, field string, at *yaml.Node, max int) []string {
	if at == nil {
		return nil
	}
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.fail(fn, at, "%s must be a list", field)
		return nil
	}
	if len(v.Content) > max {
		p.fail(fn, at, "%s has %d entries (at most %d)", field, len(v.Content), max)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		e = resolve(e)
		if e.Kind != yaml.ScalarNode || len(e.Value) > maxNameBytes {
			p.fail(fn, e, "%s entries must be short strings", field)
			return nil
		}
		out = append(out, e.Value)
	}
	return out
}

// env reads the env mapping, bounded by the limits a spec has.
func (p *parser) env(fn string, at *yaml.Node) map[string]string {
	v := resolve(at)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.fail(fn, at, "env must be a mapping of names to strings")
		return nil
	}
	if len(v.Content)/2 > function.MaxEnvVars {
		p.fail(fn, at, "env has %d variables (at most %d)", len(v.Content)/2, function.MaxEnvVars)
		return nil
	}
	env := make(map[string]string, len(v.Content)/2)
	size := 0
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), resolve(v.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			p.fail(fn, k, "env names must be strings")
			return nil
		}
		if _, dup := env[k.Value]; dup {
			p.fail(fn, k, "env %s appears twice", short(k.Value))
			return nil
		}
		value := ""
		switch {
		case isNull(val):
		case val.Kind != yaml.ScalarNode:
			p.fail(fn, val, "env %s must be a string, not a list or mapping", short(k.Value))
			return nil
		default:
			value = val.Value
		}
		if size += len(k.Value) + len(value); size > function.MaxEnvBytes {
			p.fail(fn, at, "env is more than %d bytes", function.MaxEnvBytes)
			return nil
		}
		env[k.Value] = value
	}
	return env
}

// short truncates s for a message.
func short(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// fieldNode finds the node of the field a validation message starts with,
// for its line.
func fieldNode(values map[string]*yaml.Node, msg string, fallback *yaml.Node) *yaml.Node {
	field, _, _ := strings.Cut(msg, " ")
	field, _, _ = strings.Cut(field, ".") // concurrency.max: the concurrency node
	if n := values[field]; n != nil {
		return n
	}
	return fallback
}

// abs resolves path against dir unless it is absolute.
func abs(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

// Spec returns the function's spec with code codeRef ("sha256:<hex>"),
// defaults filled in.
func (f *Function) Spec(codeRef string) function.Spec {
	s := function.Spec{
		Runtime:  f.Runtime,
		Code:     codeRef,
		Contract: f.Contract,
		Handler:  f.Handler,
		Network:  f.Network,

		NetworkAllow: slices.Clone(f.NetworkAllow),
		AllowedHosts: slices.Clone(f.AllowedHosts),
		MemoryMB:     f.Memory,
		Timeout:      function.Duration(f.Timeout),
		Env:          maps.Clone(f.Env),
		Secrets:      slices.Clone(f.Secrets),
		Buckets:      maps.Clone(f.Buckets),

		Concurrency: f.Concurrency,
		IdleTimeout: function.Duration(f.IdleTimeout),

		MinInstances: f.MinInstances,
		RateLimit:    f.RateLimit,
		Budget:       f.Budget,
		Retry:        f.Retry,
		Schedule:     f.Schedule,
		Timezone:     f.Timezone,
		Triggers:     slices.Clone(f.Triggers),
		CORS:         cloneCORS(f.CORS),
		Limits:       f.Limits,
		Auth:         f.Auth,
		InvokeMode:   f.InvokeMode,
	}
	s.Normalize()
	return s
}

// CheckCode checks that the function's code is a regular file of at most
// MaxCodeBytes that starts with the WebAssembly magic number. It does not
// validate the module further: the runtime does that when it compiles it.
func (f *Function) CheckCode() error {
	shown := f.code
	if shown == "" {
		shown = f.Code
	}
	fail := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if shown != f.Code {
			msg += " (" + f.Code + ")"
		}
		return fmt.Errorf("function %q: code %q: %s", f.Name, shown, msg)
	}
	// Stat before Open: opening a FIFO would block.
	fi, err := os.Stat(f.Code)
	if err != nil {
		return fail("%s", pathErr(err))
	}
	if function.IsProcess(f.Runtime) {
		return checkProcessCode(f.Code, fi, fail)
	}
	switch {
	case fi.IsDir():
		return fail("is a directory, not a WebAssembly module")
	case !fi.Mode().IsRegular():
		return fail("is not a regular file")
	case fi.Size() > MaxCodeBytes:
		return fail("is %d bytes (at most %d MiB)", fi.Size(), MaxCodeBytes>>20)
	}
	r, err := os.Open(f.Code)
	if err != nil {
		return fail("%s", pathErr(err))
	}
	defer r.Close()
	var magic [len(wasmMagic)]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail("%s", pathErr(err))
	}
	if string(magic[:]) != wasmMagic {
		return fail("not a WebAssembly module (bad magic)")
	}
	return nil
}

// checkProcessCode accepts a directory, or a regular .zip file of at most
// MaxCodeBytes that starts as a zip does.
func checkProcessCode(path string, fi os.FileInfo, fail func(string, ...any) error) error {
	switch {
	case fi.IsDir():
		return nil
	case !fi.Mode().IsRegular() || !strings.HasSuffix(strings.ToLower(path), ".zip"):
		return fail("must be a directory or a .zip file")
	case fi.Size() > MaxCodeBytes:
		return fail("is %d bytes (at most %d MiB)", fi.Size(), MaxCodeBytes>>20)
	}
	r, err := os.Open(path)
	if err != nil {
		return fail("%s", pathErr(err))
	}
	defer r.Close()
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || (string(magic[:]) != "PK\x03\x04" && string(magic[:]) != "PK\x05\x06") {
		return fail("is not a zip file")
	}
	return nil
}

// pathErr renders a file error without repeating the path.
func pathErr(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "no such file"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
