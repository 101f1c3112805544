// Package web is infrawatch's web console: plain ES modules, CSS and the vendored uPlot, embedded in the
// binary (go:embed) and served by the api role at /. The console is a client of the public REST API and
// the live stream like any other (it is their reference client): it has no route of its own on the
// server, and every byte it shows comes from /api/v1.
//
// Handler serves the assets under /assets/ and index.html for every other path it is given (the
// console's client routes such as /hosts/12), with a strict Content-Security-Policy: scripts, styles,
// images and connections from this origin only, no inline script or style, no framing. There is no
// build step: what is in static/ is what the browser gets.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every answer of the console. 'self' only: no CDN, no inline script
// or style attribute in markup, no eval; connect-src 'self' covers the API and the live stream.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, with what its answer needs.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the console. Build it with New.
type Handler struct {
	assets  map[string]asset // by URL path: /assets/…
	index   asset
	modTime time.Time
}

// New loads the embedded files.
func New() *Handler {
	h := &Handler{assets: map[string]asset{}, modTime: time.Now()}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		a := asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		rel := strings.TrimPrefix(p, "static/")
		if rel == "index.html" {
			h.index = a
		} else {
			h.assets["/assets/"+rel] = a
		}
		return nil
	})
	if err != nil {
		panic("web: read the embedded console: " + err.Error()) // embedded files always read
	}
	if h.index.body == nil {
		panic("web: the embedded console has no index.html")
	}
	return h
}

// ServeHTTP answers GET and HEAD: an asset under /assets/ (404 when there is none, so a typo in an
// import fails loudly), index.html for any other path (a client route; the console reads the path).
// Every answer is revalidated (no-cache with an ETag): file names carry no version, so this is what keeps
// a browser from running old modules against a new server, at the price of a 304 per file.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := h.index
	if strings.HasPrefix(r.URL.Path, "/assets/") {
		var ok bool
		if a, ok = h.assets[r.URL.Path]; !ok {
			http.Error(w, "no such file in the console", http.StatusNotFound)
			return
		}
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", h.modTime, bytes.NewReader(a.body))
}
