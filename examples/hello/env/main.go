// Command env is a Hostless function with no SDK at all: any WASI command
// module works in the CGI style. The request arrives as CGI variables and
// the body on stdin; the response is CGI headers, a blank line and the body
// on stdout; stderr lines are the invocation's logs.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	body, _ := io.ReadAll(os.Stdin)
	fmt.Fprintf(os.Stderr, "%s %s (%d bytes)\n", os.Getenv("REQUEST_METHOD"), os.Getenv("PATH_INFO"), len(body))
	fmt.Print("Content-Type: text/plain; charset=utf-8\n")
	fmt.Print("X-Powered-By: wasi\n\n")
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		if strings.HasPrefix(kv, "HTTP_") || strings.HasPrefix(kv, "REQUEST_") ||
			strings.HasPrefix(kv, "PATH_INFO") || strings.HasPrefix(kv, "QUERY_STRING") ||
			strings.HasPrefix(kv, "HOSTLESS_PATH_") {
			fmt.Println(kv)
		}
	}
	if len(body) > 0 {
		fmt.Printf("body: %s\n", body)
	}
}
