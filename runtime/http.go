package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// The App's HTTP server (HTTPAddr). The listener opens in New, so that the
// address is known (and advertised to the group) before Run; it serves
// from Run's start until Run returns. Each part registers its routes from
// its own file: operations (http_ops.go), interactive queries
// (http_iq.go), the live task view (http_tasks.go) and the web page
// (http_ui.go).

// openHTTP opens the listener of HTTPAddr.
func (a *App) openHTTP() error {
	if a.cfg.httpAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.httpAddr)
	if err != nil {
		return &ConfigError{Key: "runtime.HTTPAddr", Msg: fmt.Sprintf("listen on %q: %v", a.cfg.httpAddr, err)}
	}
	a.httpLn = ln
	mux := http.NewServeMux()
	a.routes(mux)
	a.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// routes registers every endpoint.
func (a *App) routes(mux *http.ServeMux) {
	a.opsRoutes(mux)
	a.iqRoutes(mux)
	a.tasksRoutes(mux)
	a.uiRoutes(mux)
}

// serveHTTP serves until stop is called; stop waits for the server's end.
func (a *App) serveHTTP() (stop func()) {
	if a.httpSrv == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.httpSrv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP server failed", "addr", a.httpLn.Addr().String(), "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if a.httpSrv.Shutdown(ctx) != nil {
			a.httpSrv.Close()
		}
		<-done
	}
}

// HTTPURL returns the base URL of the App's HTTP server, such as
// "http://127.0.0.1:8080", or "" without HTTPAddr.
func (a *App) HTTPURL() string {
	if a.httpLn == nil {
		return ""
	}
	return "http://" + a.httpLn.Addr().String()
}
