// Command bare is the baseline of the Hostless benchmarks: a plain net/http
// server doing, natively, exactly the work of the example function
// examples/hello/hello (read the name, count the call under a mutex, log a
// line, write the greeting). bench/load drives it and the real server in the
// same run, so the gap between the two is the platform's overhead.
//
// It listens on loopback only: this machine allows no traffic anywhere else.
// It imports nothing outside the standard library.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// hello is the native twin of examples/hello/hello: the same steps in the same
// order, with the log going to io.Discard instead of the platform's log store.
type hello struct {
	mu    sync.Mutex
	calls int
	log   *log.Logger
}

func (h *hello) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.calls++
	calls := h.calls
	h.mu.Unlock()
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	// The function reads GREETING on every call too (the manifest sets it to
	// "Hello"); reading it here keeps the work the same.
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	h.log.Printf("greeting %s (call %d of this instance)", name, calls)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s, %s!\n", greeting, name)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address HOST:PORT (loopback only)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: host must be a loopback address (127.0.0.0/8, ::1 or localhost)", addr)
	}
	mux := http.NewServeMux()
	mux.Handle("/fn/hello", &hello{log: log.New(io.Discard, "", 0)})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("bare is up on http://%s/fn/hello\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
