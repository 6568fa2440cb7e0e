package demo

import (
	"flag"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/runtime"
)

// The examples' -http flag: the App's HTTP server (runtime.HTTPAddr, ""
// is off), on a free loopback port by default.

// HTTPFlag defines -http on fs.
func HTTPFlag(fs *flag.FlagSet) *string {
	return fs.String("http", "127.0.0.1:0", "address of the app's HTTP server (web UI, /metrics, /healthz, /readyz, /topology): host:port, port 0 picks a free one; empty turns it off")
}

// AnnounceHTTP writes "web UI and metrics: <URL>/" to w if app serves
// HTTP.
func AnnounceHTTP(w io.Writer, app *runtime.App) {
	if u := app.HTTPURL(); u != "" {
		fmt.Fprintf(w, "web UI and metrics: %s/\n", u)
	}
}
