package runtime

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// The web page (HTTPAddr's "/"): one static page, runtime/web/, embedded
// in the binary, that draws the topology and shows the application's
// state, the tasks' throughput and lag and a store lookup form, from the
// App's own JSON endpoints (/topology?format=json, /api/state, /api/tasks,
// /api/stores, /stores/...). It is plain HTML, CSS and JavaScript: no
// framework, no build step, nothing fetched from anywhere but the App
// (the Content-Security-Policy below makes the browser enforce that).

//go:embed web
var webFiles embed.FS

// webContentTypes are the content types of the files the page is made of;
// a file of another type is not served.
var webContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// webCSP lets the page load and fetch only from the App itself.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiRoutes registers the web page: GET / (index.html; only the root, so
// that an unknown path is a 404, not the page) and GET /ui/{file} (its
// script, style sheet and icon).
func (a *App) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveWebFile(w, "index.html")
	})
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveWebFile(w, r.PathValue("file"))
	})
}

// serveWebFile writes the embedded file name of runtime/web with its
// content type, or a 404 naming it.
func serveWebFile(w http.ResponseWriter, name string) {
	ctype, ok := webContentTypes[path.Ext(name)]
	var b []byte
	var err error
	if ok {
		b, err = fs.ReadFile(webFiles, "web/"+name)
	}
	if !ok || err != nil {
		http.Error(w, "sluice: no web page file "+name, http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", webCSP)
	// The files change with the binary only; revalidating each load keeps
	// a browser from showing an old page after an upgrade.
	h.Set("Cache-Control", "no-cache")
	w.Write(b)
}
