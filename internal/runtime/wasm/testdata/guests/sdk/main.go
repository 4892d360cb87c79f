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
	case "/badheader":
		w.Header().Set("X-Bad", "a\r\nInjected: yes")
		fmt.Fprint(w, "bad")
	default:
		fmt.Fprintf(w, "calls=%d", calls)
	}
}

func main() {}
