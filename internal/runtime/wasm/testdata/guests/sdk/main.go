// Command sdk is a test guest built with the Go SDK. Its paths misbehave
// on purpose so tests can see the platform hold its limits.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	hostless "github.com/hostless/hostless/sdk/go"
)

var (
	calls int
	hoard [][]byte
	lines = func() []string {
		l := make([]string, 100)
		for i := range l {
			l[i] = fmt.Sprintf("line %d of a call: handled the request in good time\n", i)
		}
		return l
	}()
)

func init() {
	hostless.HandleFunc(handle)
}

func handle(w http.ResponseWriter, r *http.Request) {
	calls++
	q := r.URL.Query()
	if strings.HasPrefix(r.URL.Path, "/api/") {
		// Routes send /api/... here: their path parameters.
		fmt.Fprintf(w, "path=%s id=%s rest=%s", r.URL.Path, r.PathValue("id"), r.PathValue("rest"))
		return
	}
	switch r.URL.Path {
	case "/secret":
		// Prints one variable, and only a test secret's (SECRET_*) or one
		// of the S3 credentials' (AWS_*).
		if name := r.URL.RawQuery; strings.HasPrefix(name, "SECRET_") || strings.HasPrefix(name, "AWS_") {
			fmt.Fprint(w, os.Getenv(name))
		}
	case "/echo":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Calls", strconv.Itoa(calls))
		w.Header().Set("X-Env", os.Getenv("GREETING"))
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-Header", r.Header.Get("X-Test"))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(201)
		fmt.Fprintf(w, "%s %s?%s %s", r.Method, r.URL.Path, r.URL.RawQuery, body)
	case "/log":
		n, _ := strconv.Atoi(q.Get("n"))
		for i := range n {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		fmt.Println("to stdout")
		fmt.Fprint(os.Stderr, "no newline at end")
		fmt.Fprint(w, "logged")
	case "/lines":
		// Writes n log lines and nothing else: the logging benchmark's
		// function (n=0: silent). Each line is one write, as log.Print
		// makes; with fmt=1 each is formatted with fmt.Fprintf first, which
		// costs this guest far more than the write.
		n, _ := strconv.Atoi(q.Get("n"))
		format := q.Get("fmt") == "1"
		for i := range min(n, len(lines)) {
			if format {
				fmt.Fprintf(os.Stderr, "line %d of call %d: handled %s\n", i, calls, r.URL.Path)
			} else {
				os.Stderr.WriteString(lines[i])
			}
		}
		fmt.Fprint(w, "ok")
	case "/panic":
		panic("boom")
	case "/exit":
		os.Exit(3)
	case "/spin":
		for {
		}
	case "/sleep":
		d, _ := time.ParseDuration(q.Get("d"))
		time.Sleep(d)
		fmt.Fprint(w, "slept")
	case "/alloc":
		mb, _ := strconv.Atoi(q.Get("mb"))
		for range mb {
			hoard = append(hoard, make([]byte, 1<<20))
		}
		fmt.Fprintf(w, "holding %d MB", len(hoard))
	case "/big":
		n, _ := strconv.Atoi(q.Get("n"))
		w.Write([]byte(strings.Repeat("x", n)))
	case "/recurse":
		// Calls itself through the platform, for ever: the platform's
		// call depth limit ends the chain.
		fn := q.Get("fn")
		out, _ := http.NewRequest("GET", os.Getenv("HOSTLESS_API_URL")+"/fn/"+fn+"/recurse?fn="+fn, nil)
		out.Header.Set("Authorization", "Bearer "+r.Header.Get("X-Hostless-Token"))
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "depth=%s -> %d %s", r.Header.Get("X-Hostless-Call-Depth"), resp.StatusCode, body)
	case "/platform":
		// The platform's API with the token the call brought.
		out, err := http.NewRequest("GET", os.Getenv("HOSTLESS_API_URL")+q.Get("path"), nil)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		out.Header.Set("Authorization", "Bearer "+r.Header.Get("X-Hostless-Token"))
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(w, "%d %s", resp.StatusCode, body)
	case "/fetch":
		// An outbound call through the SDK's transport: http.Get, or
		// another method with a body, and an optional client timeout.
		client := http.DefaultClient
		if d, err := time.ParseDuration(q.Get("timeout")); err == nil {
			client = &http.Client{Timeout: d}
		}
		var resp *http.Response
		var err error
		if m := q.Get("method"); m != "" {
			var out *http.Request
			out, err = http.NewRequest(m, q.Get("url"), strings.NewReader(q.Get("body")))
			if err == nil {
				out.Header.Set("X-Guest", "yes")
				resp, err = client.Do(out)
			}
		} else {
			// n > 1 repeats the call, for benchmarks: all but the last
			// response are read and dropped.
			n, _ := strconv.Atoi(q.Get("n"))
			for range n - 1 {
				if resp, err = client.Get(q.Get("url")); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			resp, err = client.Get(q.Get("url"))
		}
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "error reading: %v", err)
			return
		}
		w.Header().Set("X-Upstream", resp.Header.Get("X-Upstream"))
		w.Header().Set("X-Upstream-Status", strconv.Itoa(resp.StatusCode))
		w.Header().Set("X-Upstream-Length", strconv.Itoa(len(body)))
		w.Write(body)
	case "/stream":
		// n chunks, each flushed, then a pause of d (or, with wait=URL, an
		// outbound GET of URL, which the test answers when it has read the
		// chunk) before the next; the writes' errors end the loop.
		n, _ := strconv.Atoi(q.Get("n"))
		d, _ := time.ParseDuration(q.Get("d"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(202)
		for i := range n {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				fmt.Fprintf(os.Stderr, "stopped at chunk %d: %v\n", i, err)
				return
			}
			w.(http.Flusher).Flush()
			if u := q.Get("wait"); u != "" && i < n-1 {
				if resp, err := http.Get(u); err == nil {
					resp.Body.Close()
				}
			}
			time.Sleep(d)
		}
		fmt.Fprint(w, "end")
	case "/badheader":
		w.Header().Set("X-Bad", "a\r\nInjected: yes")
		fmt.Fprint(w, "bad")
	default:
		fmt.Fprintf(w, "calls=%d", calls)
	}
}

func main() {}
