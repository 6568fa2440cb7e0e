package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"

	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const queryDescription = `Read a running application's state store through its HTTP server
(runtime.HTTPAddr): interactive queries. Any instance answers: one that does
not host the key forwards the request to the one that does.

  sluice query -url http://host:port STORE KEY
      GET /stores/STORE/keys/KEY: prints {"key": ..., "value": ...}; for a
      window or session store, -window FROM:TO (epoch milliseconds) gives
      the time range, and prints {"key": ..., "results": [...]}.
  sluice query -url http://host:port -range FROM:TO STORE
      GET /stores/STORE/range?from=FROM&to=TO: prints {"results": [...]};
      either bound may be empty ("-range a:" from a on, "-range :" all).

KEY, FROM and TO are written as the store's key serde reads them from a
path: a string as it is, an integer in decimal, JSON as JSON text. The answer
is printed as the server sent it. An answer other than 200 OK exits with
status 1 and prints the server's error. 503 (the key's task is moving
between instances or restoring) is retried, waiting as its Retry-After says.`

// httpFlags are the flags of the commands that talk to an application's
// HTTP server.
type httpFlags struct {
	url     string
	retries int
	timeout time.Duration
	// notes, if set, receives a line per retried answer.
	notes io.Writer
}

func (h *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.url, "url", "", "base URL of an instance's HTTP server (runtime.HTTPAddr; the examples print it at start: \"web UI and metrics: http://...\"); required")
	fs.IntVar(&h.retries, "retries", 5, "how many times a 503 Service Unavailable answer is retried")
	fs.DurationVar(&h.timeout, "timeout", 30*time.Second, "give up after this long")
}

// runQuery is `sluice query`.
func runQuery(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlagSet("query", "-url URL [-range FROM:TO | -window FROM:TO] [-standby] STORE [KEY]", queryDescription, errOut)
	var hf httpFlags
	hf.register(fs)
	keyRange := fs.String("range", "", "FROM:TO: read the keys from FROM to TO (inclusive; an empty bound is open) instead of one key")
	window := fs.String("window", "", "FROM:TO epoch milliseconds: the time range of a window or session store's key fetch")
	standby := fs.Bool("standby", false, "let a standby replica answer (its lag is printed to standard error)")
	verbose := fs.Bool("v", false, "print the instance that answered, and each retried answer, to standard error")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *verbose {
		hf.notes = errOut
	}
	rangeSet := false
	fs.Visit(func(f *flag.Flag) { rangeSet = rangeSet || f.Name == "range" })
	q := url.Values{}
	var path string
	switch {
	case rangeSet:
		if fs.NArg() != 1 {
			return usagef("query -range takes one argument, the store; got %q", fs.Args())
		}
		if *window != "" {
			return usagef("-range and -window cannot be combined")
		}
		from, to, ok := strings.Cut(*keyRange, ":")
		if !ok {
			return usagef("-range %q: want FROM:TO (either may be empty)", *keyRange)
		}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		path = "/stores/" + url.PathEscape(fs.Arg(0)) + "/range"
	default:
		if fs.NArg() != 2 {
			return usagef("query takes two arguments, STORE and KEY (or -range FROM:TO STORE); got %q", fs.Args())
		}
		if *window != "" {
			from, to, ok := strings.Cut(*window, ":")
			if !ok {
				return usagef("-window %q: want FROM:TO in epoch milliseconds", *window)
			}
			for _, v := range []string{from, to} {
				if _, err := strconv.ParseInt(v, 10, 64); v != "" && err != nil {
					return usagef("-window %q: %q is not epoch milliseconds", *window, v)
				}
			}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
		}
		path = "/stores/" + url.PathEscape(fs.Arg(0)) + "/keys/" + url.PathEscape(fs.Arg(1))
	}
	if *standby {
		q.Set("standby", "true")
	}
	ctx, cancel := context.WithTimeout(ctx, hf.timeout)
	defer cancel()
	body, hdr, err := hf.get(ctx, path, q)
	if err != nil {
		return err
	}
	if *verbose {
		if by := hdr.Get("Sluice-Served-By"); by != "" {
			fmt.Fprintf(errOut, "served by %s\n", by)
		}
	}
	if lag := hdr.Get("Sluice-Standby-Lag"); lag != "" {
		fmt.Fprintf(errOut, "answered by a standby, %s records behind\n", lag)
	}
	return writeBody(out, body)
}

// writeBody writes body with a final newline.
func writeBody(out io.Writer, body []byte) error {
	if _, err := out.Write(body); err != nil {
		return err
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		_, err := io.WriteString(out, "\n")
		return err
	}
	return nil
}

// httpError is an answer other than 200 OK.
type httpError struct {
	url    string
	status string
	msg    string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("GET %s: %s: %s", e.url, e.status, e.msg)
}

// get GETs path?query from the server, retrying 503 answers hf.retries
// times, each after its Retry-After (1 s without one, 10 s at most). It
// returns the body of a 200 answer, else an *httpError with the server's
// error message.
func (hf *httpFlags) get(ctx context.Context, path string, query url.Values) ([]byte, http.Header, error) {
	if hf.url == "" {
		return nil, nil, usagef("-url is required: the base URL of one of the application's instances, such as http://127.0.0.1:8080")
	}
	base, err := url.Parse(hf.url)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, nil, usagef("-url %q: want a URL such as http://127.0.0.1:8080", hf.url)
	}
	u := strings.TrimSuffix(hf.url, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: %w", u, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("GET %s: read the answer: %w", u, err)
		}
		if resp.StatusCode == http.StatusOK {
			return body, resp.Header, nil
		}
		herr := &httpError{url: u, status: resp.Status, msg: errorMessage(body)}
		if resp.StatusCode != http.StatusServiceUnavailable || attempt >= hf.retries {
			return nil, nil, herr
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if hf.notes != nil {
			fmt.Fprintf(hf.notes, "%s: %s; retrying in %v\n", resp.Status, herr.msg, wait)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w (then: %w)", herr, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// errorMessage is the "error" field of a JSON error answer, or the body.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := string(bytes.TrimSpace(body)); s != "" {
		return s
	}
	return "(no message)"
}

// retryAfter reads a Retry-After header (seconds or an HTTP date): how
// long to wait, 1 s when absent or unreadable, between 0 and 10 s.
func retryAfter(h string, now time.Time) time.Duration {
	const def, most = time.Second, 10 * time.Second
	if h == "" {
		return def
	}
	var d time.Duration
	if n, err := strconv.Atoi(h); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	} else {
		return def
	}
	return min(max(d, 0), most)
}
