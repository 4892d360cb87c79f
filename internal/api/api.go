// Package api is the control plane: JSON over HTTP under /v1, for deploys,
// functions, invocations, logs and usage. Every endpoint checks the
// caller's admin key. It knows the store, blob and invoker through small
// interfaces and nothing of runtimes.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/blob"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/gateway"
	"github.com/hostless/hostless/internal/metering"
	"github.com/hostless/hostless/internal/store"
)

// maxJSONBytes bounds control API request bodies other than artifacts.
const maxJSONBytes = 1 << 20

// Bounds on how long a client may take to send a body (variables for tests).
var (
	jsonReadTimeout     = 30 * time.Second
	artifactReadTimeout = 10 * time.Minute
)

// Invoker is what the API needs of the invoker.
type Invoker interface {
	gateway.Invoker
	Changed(project, name string)
}

// Followers signal when new records are stored (the telemetry Recorder).
type Followers interface {
	Subscribe() (<-chan struct{}, func())
}

// Config wires the API.
type Config struct {
	Store            store.Store
	Blobs            blob.Store
	Invoker          Invoker
	Followers        Followers
	Log              *slog.Logger
	MaxArtifactBytes int64
	MaxRequestBytes  int64
	// MaxResponseBytes is the server's response limit; a function's
	// limits.response may not exceed it (0: not checked).
	MaxResponseBytes int64
	// KeyHashes are the SHA-256 hashes of the accepted admin keys.
	KeyHashes [][32]byte
	// Principals, when set, authenticates other bearer credentials (an
	// admin user's access token, an API key with the admin scope): the API
	// takes those whose principal is an admin.
	Principals Principals
	// Draining is closed when the server shuts down; log streams end.
	Draining <-chan struct{}
	// Metrics, when set, is served at GET /metrics to admin-key holders.
	Metrics http.Handler
	// CanRun, when set, says why this server can't run a spec (a process
	// function on a host that can't sandbox): the deploy is refused with it.
	CanRun func(*function.Spec) error
	// Async, when set, takes async invocations (X-Hostless-Invocation-Type:
	// Event on invoke), answers for their states and keeps dead letters.
	Async Async
	// Routes, when set, stores and serves the route table.
	Routes Routes
	// Emit, when set, publishes platform events (function.deployed,
	// function.deleted).
	Emit func(name string, data []byte)
	// Prices cost the usage GET /v1/usage reports.
	Prices metering.Prices
}

// Principals authenticates bearer credentials.
type Principals interface {
	Authenticate(ctx context.Context, credential string) (auth.Principal, error)
}

// API serves /v1.
type API struct {
	cfg Config
	// deployMu serializes deploys of one name across requests, so that a
	// version's compile and cache invalidation follow the store's order.
	deployMu sync.Mutex
}

// New returns the API.
func New(cfg Config) *API { return &API{cfg: cfg} }

// HashKey returns the SHA-256 of an admin key. Keys are 256-bit random
// tokens (or operator-chosen secrets), so a fast hash is what a lookup
// needs; passwords are another matter and use argon2id.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	h := func(pattern string, fn apierror.Handler) {
		mux.Handle(pattern, apierror.Wrap(a.cfg.Log, a.auth(fn)))
	}
	h("GET /v1/functions", a.listFunctions)
	h("GET /v1/functions/{name}", a.getFunction)
	h("PUT /v1/functions/{name}", a.putFunction)
	h("DELETE /v1/functions/{name}", a.deleteFunction)
	h("GET /v1/functions/{name}/versions", a.listVersions)
	h("POST /v1/functions/{name}/rollback", a.rollback)
	h("GET /v1/functions/{name}/aliases", a.listAliases)
	h("GET /v1/functions/{name}/aliases/{alias}", a.getAlias)
	h("PUT /v1/functions/{name}/aliases/{alias}", a.putAlias)
	h("DELETE /v1/functions/{name}/aliases/{alias}", a.deleteAlias)
	h("POST /v1/functions/{name}/aliases/{alias}/promote", a.promote)
	h("POST /v1/functions/{name}/invoke", a.invoke)
	h("HEAD /v1/artifacts/{ref}", a.headArtifact)
	h("PUT /v1/artifacts/{ref}", a.putArtifact)
	h("GET /v1/invocations", a.listInvocations)
	h("GET /v1/invocations/{id}", a.getInvocation)
	h("GET /v1/logs", a.logs)
	h("GET /v1/usage", a.usage)
	h("GET /v1/routes", a.getRoutes)
	h("PUT /v1/routes", a.putRoutes)
	h("GET /v1/functions/{name}/dlq", a.deadLetters)
	h("POST /v1/functions/{name}/dlq/redrive", a.redrive)
	if a.cfg.Metrics != nil {
		// Prometheus scrapes with the admin key as its bearer token.
		h("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
			a.cfg.Metrics.ServeHTTP(w, r)
			return nil
		})
	}
	mux.Handle("/v1/", apierror.Wrap(a.cfg.Log, func(w http.ResponseWriter, r *http.Request) error {
		return apierror.NotFound("not_found", "no API endpoint %s %s", r.Method, r.URL.Path)
	}))
}

// auth checks the admin key before h runs.
func (a *API) auth(h apierror.Handler) apierror.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			e := apierror.New(http.StatusUnauthorized, "unauthorized", "send the admin key as \"Authorization: Bearer <key>\"")
			e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless"`}}
			return e
		}
		sum := HashKey(tok)
		for _, want := range a.cfg.KeyHashes {
			if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				boundBody(w, r)
				return h(w, r)
			}
		}
		if a.cfg.Principals != nil {
			p, err := a.cfg.Principals.Authenticate(r.Context(), tok)
			if err == nil && p.IsAdmin() {
				boundBody(w, r)
				return h(w, r)
			}
			if err == nil && p.Kind != auth.Anonymous {
				return apierror.New(http.StatusForbidden, "forbidden", "this needs the admin key, an admin's access token or an API key with the admin scope")
			}
			if err != nil && !errors.Is(err, auth.ErrInvalidToken) {
				return err
			}
		}
		return apierror.New(http.StatusForbidden, "forbidden", "the key is not valid")
	}
}

// boundBody gives a client a deadline to send its request body, and lifts
// it once the body has been read: a deadline left in place would cut a
// long response (an invocation, a log stream) that follows.
func boundBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	timeout := jsonReadTimeout
	if strings.HasPrefix(r.URL.Path, "/v1/artifacts/") {
		timeout = artifactReadTimeout
	}
	ctl := http.NewResponseController(w)
	_ = ctl.SetReadDeadline(time.Now().Add(timeout))
	r.Body = &deadlineBody{ReadCloser: r.Body, ctl: ctl}
}

// deadlineBody lifts the read deadline when its body ends.
type deadlineBody struct {
	io.ReadCloser
	ctl  *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBytes+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierror.BadRequest("invalid JSON body: %v", err)
	}
	if dec.More() {
		return apierror.BadRequest("invalid JSON body: more than one value")
	}
	return nil
}

func fnNotFound(name string) error {
	return apierror.NotFound("function_not_found", "no function named %q", name)
}

func storeErr(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fnNotFound(name)
	}
	return err
}

// FunctionView is a function with the specs of what its live alias
// serves: its version's, and its canary's if it has one.
type FunctionView struct {
	function.Function
	Spec       *function.Spec `json:"spec,omitempty"`
	CanarySpec *function.Spec `json:"canary_spec,omitempty"`
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request) error {
	fns, err := a.cfg.Store.ListFunctions(r.Context(), function.DefaultProject)
	if err != nil {
		return err
	}
	if fns == nil {
		fns = []function.Function{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"functions": fns})
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	fn, err := a.cfg.Store.GetFunction(r.Context(), function.DefaultProject, name)
	if err != nil {
		return storeErr(name, err)
	}
	view := FunctionView{Function: fn}
	for _, n := range []int{fn.Version, fn.CanaryVersion} {
		if n == 0 {
			continue
		}
		v, err := a.cfg.Store.GetVersion(r.Context(), function.DefaultProject, name, n)
		if err != nil {
			return storeErr(name, err)
		}
		spec := v.Spec.Redacted() // trigger URLs may carry passwords
		if n == fn.Version {
			view.Spec = &spec
		} else {
			view.CanarySpec = &spec
		}
	}
	return writeJSON(w, http.StatusOK, view)
}

// PutResult is the answer to a deploy of one function.
type PutResult struct {
	Action   string            `json:"action"` // created, updated, unchanged
	Function function.Function `json:"function"`
	Version  function.Version  `json:"version"`
}

var wasmMagic = []byte("\x00asm\x01\x00\x00\x00")

// putFunction deploys a spec: live serves it alone, or, with ?canary=W,
// it becomes live's canary at W percent.
func (a *API) putFunction(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := function.ValidName(name); err != nil {
		return apierror.BadRequest("%v", strings.TrimPrefix(err.Error(), "invalid: "))
	}
	weight, err := canaryWeight(r)
	if err != nil {
		return err
	}
	var spec function.Spec
	if err := decodeJSON(r, &spec); err != nil {
		return err
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return apierror.BadRequest("function %q: %s", name, strings.TrimPrefix(err.Error(), "invalid: "))
	}
	if err := a.checkLimits(spec.Limits); err != nil {
		return apierror.BadRequest("function %q: %v", name, err)
	}
	if a.cfg.CanRun != nil {
		if err := a.cfg.CanRun(&spec); err != nil {
			return apierror.BadRequest("function %q: %v", name, err)
		}
	}
	if err := a.checkArtifact(r.Context(), spec); err != nil {
		return err
	}
	a.deployMu.Lock()
	var res store.PutResult
	if weight > 0 {
		res, err = a.cfg.Store.PutCanary(r.Context(), function.DefaultProject, name, spec, weight)
	} else {
		res, err = a.cfg.Store.PutFunction(r.Context(), function.DefaultProject, name, spec)
	}
	if err == nil && res.Action != "unchanged" {
		a.cfg.Invoker.Changed(function.DefaultProject, name)
	}
	a.deployMu.Unlock()
	if err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	if res.Action != "unchanged" {
		a.emit("function.deployed", map[string]any{"function": name, "version": res.Version.Number, "action": res.Action})
	}
	status := http.StatusOK
	if res.Action == "created" {
		status = http.StatusCreated
	}
	res.Version.Spec = res.Version.Spec.Redacted()
	return writeJSON(w, status, PutResult{Action: res.Action, Function: res.Function, Version: res.Version})
}

// checkArtifact makes sure the code a spec names was uploaded and suits
// its runtime, so a deploy fails before anything of the function is stored.
func (a *API) checkArtifact(ctx context.Context, spec function.Spec) error {
	rc, _, err := a.cfg.Blobs.Get(ctx, function.ArtifactKey(spec.Code))
	if errors.Is(err, blob.ErrNotFound) {
		return apierror.BadRequest("code %s was not uploaded: PUT /v1/artifacts/%s first", spec.Code, spec.Code)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	head := make([]byte, len(wasmMagic))
	_, err = io.ReadFull(rc, head)
	if function.IsProcess(spec.Runtime) {
		// Lambda's packaging: a zip (a directory is zipped by the CLI).
		if err != nil || (!bytes.HasPrefix(head, []byte("PK\x03\x04")) && !bytes.HasPrefix(head, []byte("PK\x05\x06"))) {
			return apierror.BadRequest("code %s is not a zip file (runtime %s takes a zip of the code, as Lambda does)", spec.Code, spec.Runtime)
		}
		return nil
	}
	if err != nil || !bytes.Equal(head, wasmMagic) {
		return apierror.BadRequest("code %s is not a WebAssembly module (runtime wasm)", spec.Code)
	}
	return nil
}

func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	a.deployMu.Lock()
	err := a.cfg.Store.DeleteFunction(r.Context(), function.DefaultProject, name)
	if err == nil {
		a.cfg.Invoker.Changed(function.DefaultProject, name)
	}
	a.deployMu.Unlock()
	if err != nil {
		return storeErr(name, err)
	}
	a.emit("function.deleted", map[string]any{"function": name})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	vs, err := a.cfg.Store.ListVersions(r.Context(), function.DefaultProject, name)
	if err != nil {
		return storeErr(name, err)
	}
	if len(vs) == 0 {
		return fnNotFound(name)
	}
	for i := range vs {
		vs[i].Spec = vs[i].Spec.Redacted()
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// rollback moves the live alias back: {"version": N} serves version N
// alone; without it, a canary is dropped (live's version serves alone), or
// else the version before live's serves.
func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var body struct {
		Version *int `json:"version"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil && !(r.ContentLength < 0 && strings.Contains(err.Error(), "EOF")) {
			return err
		}
	}
	to := 0
	if body.Version != nil {
		if to = *body.Version; to < 1 {
			return apierror.BadRequest("version %d: versions are numbered from 1", to)
		}
	}
	a.deployMu.Lock()
	defer a.deployMu.Unlock()
	if _, err := a.cfg.Store.UpdateAlias(r.Context(), function.DefaultProject, name, function.LiveAlias, rollbackTarget(name, to)); err != nil {
		return aliasErr(name, function.LiveAlias, err)
	}
	a.cfg.Invoker.Changed(function.DefaultProject, name)
	fn, err := a.cfg.Store.GetFunction(r.Context(), function.DefaultProject, name)
	if err != nil {
		return storeErr(name, err)
	}
	return writeJSON(w, http.StatusOK, fn)
}

func parseRef(ref string) (string, error) {
	if len(ref) != len("sha256:")+64 || !strings.HasPrefix(ref, "sha256:") {
		return "", apierror.BadRequest("artifact reference %q must be sha256:<64 hex digits>", ref)
	}
	if _, err := hex.DecodeString(ref[7:]); err != nil || strings.ToLower(ref) != ref {
		return "", apierror.BadRequest("artifact reference %q must be sha256:<64 lowercase hex digits>", ref)
	}
	return ref, nil
}

func (a *API) headArtifact(w http.ResponseWriter, r *http.Request) error {
	ref, err := parseRef(r.PathValue("ref"))
	if err != nil {
		return err
	}
	info, err := a.cfg.Blobs.Stat(r.Context(), function.ArtifactKey(ref))
	if errors.Is(err, blob.ErrNotFound) {
		return apierror.NotFound("artifact_not_found", "no artifact %s", ref)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

// digestReader hashes what it reads and fails at EOF if the content does
// not match its name, so a corrupt upload is never stored.
type digestReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	n    int64
	max  int64
	got  string // the content's digest, when it did not match
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if d.n > d.max {
		return n, fmt.Errorf("%w", errTooBig)
	}
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(d.h.Sum(nil)); got != d.want {
			d.got = got
			return n, errDigest
		}
	}
	return n, err
}

var (
	errTooBig = errors.New("artifact too large")
	errDigest = errors.New("artifact does not match its name")
)

func (a *API) putArtifact(w http.ResponseWriter, r *http.Request) error {
	ref, err := parseRef(r.PathValue("ref"))
	if err != nil {
		return err
	}
	key := function.ArtifactKey(ref)
	if info, err := a.cfg.Blobs.Stat(r.Context(), key); err == nil {
		return writeJSON(w, http.StatusOK, map[string]any{"code": ref, "size": info.Size})
	}
	if r.ContentLength > a.cfg.MaxArtifactBytes {
		return apierror.New(http.StatusRequestEntityTooLarge, "artifact_too_large", "artifact is larger than the limit of %d bytes", a.cfg.MaxArtifactBytes)
	}
	dr := &digestReader{r: r.Body, h: sha256.New(), want: ref, max: a.cfg.MaxArtifactBytes}
	info, err := a.cfg.Blobs.Put(r.Context(), key, dr)
	switch {
	case errors.Is(err, errTooBig):
		return apierror.New(http.StatusRequestEntityTooLarge, "artifact_too_large", "artifact is larger than the limit of %d bytes", a.cfg.MaxArtifactBytes)
	case errors.Is(err, errDigest):
		return apierror.BadRequest("artifact %s: the content does not match its name: it hashes to %s", ref, dr.got)
	case err != nil:
		return fmt.Errorf("store artifact %s: %w", ref, err)
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"code": ref, "size": info.Size})
}

// invoke runs a function with the request body as its body (POST /), and
// answers with the function's response and its invocation ID. The name may
// carry @{version} or @{alias}, as function URLs do.
func (a *API) invoke(w http.ResponseWriter, r *http.Request) error {
	body, err := gateway.Body(r.Body, a.cfg.MaxRequestBytes)
	if err != nil {
		return err
	}
	h := http.Header{}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	req := &function.Request{Method: http.MethodPost, Path: "/", Host: r.Host, RemoteAddr: r.RemoteAddr, Header: h, Body: body}
	if async, err := gateway.InvocationType(r.Header); err != nil {
		return err
	} else if async {
		var ga gateway.Async
		if a.cfg.Async != nil {
			ga = a.cfg.Async
		}
		return gateway.Enqueue(w, r, ga, r.PathValue("name"), function.TriggerAsync, req)
	}
	resp, rec, name, err := gateway.InvokeRef(r.Context(), a.cfg.Invoker, function.DefaultProject, r.PathValue("name"), "api", req)
	if rec != nil {
		w.Header().Set("X-Hostless-Invocation-Id", rec.ID)
		w.Header().Set("X-Hostless-Status", rec.Status)
	}
	if err != nil {
		return gateway.InvokeError(name, err)
	}
	gateway.WriteResponse(w, resp)
	return nil
}

func queryInt(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, apierror.BadRequest("%s=%q: want a non-negative integer", name, s)
	}
	return min(n, max), nil
}

func (a *API) listInvocations(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1000)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 50
	}
	q := r.URL.Query()
	recs, err := a.cfg.Store.ListInvocations(r.Context(), store.InvocationFilter{
		Project: function.DefaultProject, Function: q.Get("function"), Before: q.Get("before"), Limit: limit,
	})
	if err != nil {
		return err
	}
	out := map[string]any{"invocations": recs}
	if recs == nil {
		out["invocations"] = []function.Invocation{}
	}
	if len(recs) == limit {
		out["next"] = recs[len(recs)-1].ID
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getInvocation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	rec, err := a.cfg.Store.GetInvocation(r.Context(), function.DefaultProject, id)
	if errors.Is(err, store.ErrNotFound) {
		return a.getAsync(w, r, id)
	}
	if err != nil {
		return err
	}
	if rec.Logs == nil {
		rec.Logs = []function.LogLine{}
	}
	return writeJSON(w, http.StatusOK, rec)
}

// checkLimits refuses payload limits above the server's maximums.
func (a *API) checkLimits(l function.Limits) error {
	if m := a.cfg.MaxRequestBytes; m > 0 && l.Request > m {
		return fmt.Errorf("limits.request %s is more than the server's maximum of %s (max_request_bytes)",
			function.FormatBytes(l.Request), function.FormatBytes(m))
	}
	if m := a.cfg.MaxResponseBytes; m > 0 && l.Response > m {
		return fmt.Errorf("limits.response %s is more than the server's maximum of %s (max_response_bytes)",
			function.FormatBytes(l.Response), function.FormatBytes(m))
	}
	return nil
}
