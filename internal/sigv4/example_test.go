package sigv4_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hostless/hostless/internal/sigv4"
)

// A Lambda Invoke endpoint: verify, then read the body, which Verify has
// already read and hashed (Lambda clients sign the body's hash without
// sending it). An *Error maps to AWS's error shape.
func ExampleVerifier() {
	keys := map[string]string{"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	v := &sigv4.Verifier{
		Service: "lambda",
		Lookup: func(id string) (string, bool) {
			s, ok := keys[id]
			return s, ok
		},
	}
	http.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		auth, err := v.Verify(r, time.Now())
		if err == nil {
			_, err = io.ReadAll(r.Body) // for S3 uploads: the body is authentic only if this ends in io.EOF
		}
		var e *sigv4.Error
		if errors.As(err, &e) {
			w.Header().Set("X-Amzn-ErrorType", e.Code)
			w.WriteHeader(e.Status)
			fmt.Fprintf(w, `{"message":%q}`, e.Message)
			return
		}
		fmt.Fprintf(w, `{"caller":%q}`, auth.AccessKeyID)
	})
}
