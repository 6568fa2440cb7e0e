package runtime

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page and its files are served with their content types and the
// policy that keeps the browser from fetching anything but the App; other
// paths are 404s, not the page. (The page itself runs in Chromium in
// examples/wordcount's ui test, make test-ui.)
func TestWebPageFiles(t *testing.T) {
	mux := http.NewServeMux()
	(&App{}).uiRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		body         string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="/ui/app.js" defer></script>`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", "/api/tasks"},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8", "svg.topology"},
		{"GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/ui/index.html", 200, "text/html; charset=utf-8", "<title>Sluice</title>"},
		{"GET", "/ui/missing.js", 404, "", "missing.js"},
		{"GET", "/ui/..%2fhttp_ui.go", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/nothing/here", 404, "", ""},
		{"POST", "/", 405, "", ""},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("%s %s: body %q does not name %q", tc.method, tc.path, body, tc.body)
			}
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, got, tc.ctype)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != webCSP {
			t.Errorf("%s %s: Content-Security-Policy %q, want %q", tc.method, tc.path, got, webCSP)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q, want nosniff", tc.method, tc.path, got)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: body does not contain %q", tc.method, tc.path, tc.body)
		}
	}
}

// The page loads nothing from outside the App: every file it names is one
// of its own, and no file holds an absolute URL (but the SVG namespace,
// which names and fetches nothing).
func TestWebPageIsSelfContained(t *testing.T) {
	index, err := fs.ReadFile(webFiles, "web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d files, want at least the script, the style sheet and the icon", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "/ui/"):
			name := strings.TrimPrefix(ref, "/ui/")
			if _, err := fs.Stat(webFiles, "web/"+name); err != nil {
				t.Errorf("index.html names %s, which is not embedded: %v", ref, err)
			}
			if _, ok := webContentTypes[name[strings.LastIndex(name, "."):]]; !ok {
				t.Errorf("index.html names %s, whose type is not served", ref)
			}
		case ref == "/metrics" || ref == "/healthz" || ref == "/readyz" || ref == "/topology":
		default:
			t.Errorf("index.html names %q, neither a file of the page nor an endpoint of the App", ref)
		}
	}
	absURL := regexp.MustCompile(`(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s'"` + "`" + `)]*`)
	err = fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(webFiles, p)
		if err != nil {
			return err
		}
		for _, u := range absURL.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s holds the absolute URL %q: the page must fetch only from the App", p, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
