// Command cgi is a test guest in the CGI style (no SDK).
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

var hoard [][]byte

func main() {
	path := os.Getenv("PATH_INFO")
	body, _ := io.ReadAll(os.Stdin)
	fmt.Fprintf(os.Stderr, "cgi %s %s\n", os.Getenv("REQUEST_METHOD"), path)
	switch path {
	case "/exit":
		fmt.Print("Content-Type: text/plain\n\npartial")
		os.Exit(3)
	case "/garbage":
		fmt.Print("no headers here")
	case "/notfound":
		fmt.Print("Status: 404 Not Found\nContent-Type: text/plain\n\nnope")
	case "/spin":
		for {
		}
	case "/alloc":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "/big":
		n, _ := strconv.Atoi(os.Getenv("QUERY_STRING"))
		fmt.Print("Content-Type: text/plain\n\n")
		os.Stdout.Write([]byte(strings.Repeat("x", n)))
	default:
		fmt.Printf("Content-Type: text/plain\nX-Greeting: %s\n\n", os.Getenv("GREETING"))
		fmt.Printf("%s %s %s q=%s body=%s", os.Getenv("REQUEST_METHOD"), os.Getenv("SCRIPT_NAME"), path, os.Getenv("QUERY_STRING"), body)
	}
}
