// Command hello is a Hostless function written with the Go SDK: a WASI
// reactor whose warm instances serve request after request.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"

	hostless "github.com/hostless/hostless/sdk/go"
)

// calls survives between requests: an instance stays warm.
var calls int

func init() {
	log.SetFlags(0)
	hostless.HandleFunc(hello)
}

func hello(w http.ResponseWriter, r *http.Request) {
	calls++
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	log.Printf("greeting %s (call %d of this instance)", name, calls)
	if r.URL.Path == "/json" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"greeting": greeting, "name": name, "calls": calls})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s, %s!\n", greeting, name)
}

func main() {}
