// Package console serves the web console: a page, a script and a style
// sheet embedded in the binary and served under /console/, with no build
// step and nothing fetched from elsewhere, so it works offline. The console
// is a client of the control API like the CLI: the browser calls /v1 with
// the admin's token. This package knows nothing of the platform's parts and
// must never import them; it serves files.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
)

// Prefix is where the console is served.
const Prefix = "/console/"

//go:embed assets
var assets embed.FS

// contentTypes are the types of the assets, by extension: the console
// ships only these kinds, and the host's MIME tables don't decide them.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// CSP is the console's Content-Security-Policy: its own script and style
// sheet only (no inline script or style, no eval), API calls to its own
// origin, images of its own or made in the page (object previews), and
// no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	body  []byte
	etag  string
	ctype string
}

// Handler serves the console's assets. Paths under /console/ that name no
// asset and have no extension are the console's own pages (a reload of a
// deep link) and get index.html; other missing paths get a 404.
type Handler struct {
	assets map[string]asset
	log    *slog.Logger
}

// New returns the console's handler over its embedded assets.
func New(log *slog.Logger) *Handler {
	h := &Handler{assets: map[string]asset{}, log: log}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "assets/")
		h.assets[name] = asset{name: name, body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		// The files are compiled in: a failure to read them is a broken build.
		panic("console: embedded assets: " + err.Error())
	}
	return h
}

// Register serves the console on mux at /console/ (and /console, which
// redirects there).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(strings.TrimSuffix(Prefix, "/"), h)
	mux.Handle(Prefix, h)
}

// ServeHTTP serves an asset, index.html for the console's pages, or an
// error; every answer carries the security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := apierror.New(http.StatusMethodNotAllowed, "method_not_allowed", "the console's files are read with GET")
		e.Header = http.Header{"Allow": {"GET, HEAD"}}
		apierror.Write(w, r, h.log, e)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	a, ok := h.assets[name]
	switch {
	case ok:
	case path.Ext(name) == "":
		a = h.assets["index.html"] // the console routes its own pages
	default:
		apierror.Write(w, r, h.log, apierror.NotFound("not_found", "the console has no file %s", r.URL.Path))
		return
	}
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("ETag", a.etag)
	// The names don't change with the content, so a browser asks again on
	// every use; the ETag makes that a 304.
	hdr.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
