// Package hostless is the guest SDK for Hostless WebAssembly functions
// written in Go. A function is an ordinary net/http handler:
//
//	package main
//
//	import (
//		"fmt"
//		"net/http"
//
//		hostless "github.com/hostless/hostless/sdk/go"
//	)
//
//	func init() {
//		hostless.HandleFunc(func(w http.ResponseWriter, r *http.Request) {
//			fmt.Fprintf(w, "Hello, %s!\n", r.URL.Query().Get("name"))
//		})
//	}
//
//	func main() {}
//
// built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello.wasm .
//
// A reactor's main never runs, so handlers register in init. One instance
// serves request after request (its globals survive between calls), one at a
// time; what a handler writes to os.Stdout or os.Stderr becomes the
// invocation's log lines.
//
// # Outbound HTTP
//
// WASI preview 1 has no sockets, so a function calls out through the
// platform: on wasip1 the package sets http.DefaultTransport (and
// http.DefaultClient's) to a Transport that sends requests through a host
// function, and http.Get, http.Post and clients without a Transport of
// their own work unchanged:
//
//	resp, err := http.Get("https://api.example.com/v1/items")
//
// Only the hosts in the function's allowed_hosts are reachable (none by
// default); a refused call is an error that names allowed_hosts. The
// platform follows redirects itself, each to an allowed host only, and
// bounds a call by the function's timeout, a per-call limit (30 s) and a
// response body limit (6 MiB), and a request by the same size; a request's
// context deadline (http.Client.Timeout) shortens the call. A call blocks
// the instance until it ends. Each call is a log line of the invocation.
//
// # Streaming
//
// The response writer is an http.Flusher. A function deployed with
// invoke_mode: stream sends what it has written to the client when it
// calls Flush (the status and headers with the first flush), so it can
// serve Server-Sent Events or a long download; a write that leaves 64 KiB
// unsent flushes by itself. After the client goes away, writes return an
// error (and the platform cancels the invocation). On a buffered function
// (the default) Flush does nothing and the response goes out whole.
//
//	w.Header().Set("Content-Type", "text/event-stream")
//	for ev := range events {
//		fmt.Fprintf(w, "data: %s\n\n", ev)
//		w.(http.Flusher).Flush()
//	}
//
// The package has no dependencies beyond the standard library. On other
// targets than wasip1 it only records the handler, so a function's package
// still builds and its handler can be tested with net/http/httptest.
//
// # ABI
//
// The host talks to the guest through two exports (version 1 of the ABI):
//
//	hostless_buffer(size i32) i32   returns a pointer to at least size bytes of guest memory
//	hostless_handle(size i32) i64   handles the request of size bytes the host wrote there;
//	                                returns ptr<<32 | len of the encoded response
//
// A request is encoded as strings (a little-endian uint32 length, then the
// bytes): method, path, raw query, host, remote address, then a uint32
// header count and as many name/value string pairs (one pair per value),
// then the body as a string, then, for a request that matched a route with
// path parameters, a uint32 count and as many name/value string pairs
// (absent otherwise: a guest reads them with r.PathValue, and a guest built
// before they existed stops reading at the body). A response is a uint32 status, a uint32 header
// count and pairs, then the body as a string. The host enforces every limit
// (time, memory, sizes); the guest trusts what the host sends.
//
// Outbound HTTP uses two host functions the guest imports from module
// "hostless" (a module that doesn't import them doesn't need them):
//
//	http_send(req_ptr, req_len, out_ptr, out_cap i32) i32
//	http_recv(ptr, cap i32) i32
//
// The request is encoded as strings: method, URL, a uint32 header count
// and name/value pairs, the body, then a uint32 timeout in milliseconds (0
// for none). http_send returns the length of the encoded response, written
// at out_ptr when it fits in out_cap; otherwise the host keeps it until
// http_recv copies it to a buffer at least that long (returning the length,
// or -1). A response is a uint32 status, a uint32 header count and pairs,
// then the body as a string; status 0 is a refused or failed call, and the
// body is the reason.
//
// Streaming uses a third host function:
//
//	response_flush(ptr, len i32) i32
//
// Its first call of a request sends the response encoding (status,
// headers and the body so far); every later one sends body bytes alone.
// It returns 0 when sent, -1 when the call doesn't stream (the guest then
// buffers the rest, as before), and -2 when the response was cut short.
// After a successful flush, hostless_handle returns a response with no
// headers whose body is what remains; the host ignores its status.
package hostless

import "net/http"

var handler http.Handler = http.NotFoundHandler()

// Handle sets the handler for every request to this function. Call it from
// init.
func Handle(h http.Handler) {
	if h == nil {
		panic("hostless: nil handler")
	}
	handler = h
}

// HandleFunc sets a handler function for every request to this function.
// Call it from init.
func HandleFunc(f func(http.ResponseWriter, *http.Request)) {
	Handle(http.HandlerFunc(f))
}

// Handler returns the handler set with Handle, for tests on the host.
func Handler() http.Handler { return handler }
