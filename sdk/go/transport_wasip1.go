//go:build wasip1

package hostless

import (
	"errors"
	"net/http"
	"unsafe"
)

func init() {
	// The one place the SDK works in init: a reactor's main never runs.
	t := &Transport{}
	http.DefaultTransport = t
	http.DefaultClient.Transport = t
}

//go:wasmimport hostless http_send
func httpSend(reqPtr unsafe.Pointer, reqLen int32, outPtr unsafe.Pointer, outCap int32) int32

//go:wasmimport hostless http_recv
func httpRecv(ptr unsafe.Pointer, size int32) int32

// sendBuf takes most responses in one host call; a bigger one comes with
// a second. Guest code runs on one thread and nothing yields between the
// call and the copy, so one buffer serves every goroutine.
var sendBuf = make([]byte, 64<<10)

func send(req []byte) ([]byte, error) {
	var reqPtr unsafe.Pointer
	if len(req) > 0 {
		reqPtr = unsafe.Pointer(&req[0])
	}
	n := httpSend(reqPtr, int32(len(req)), unsafe.Pointer(&sendBuf[0]), int32(len(sendBuf)))
	if int(n) <= len(sendBuf) {
		return append([]byte(nil), sendBuf[:n]...), nil
	}
	out := make([]byte, n)
	if httpRecv(unsafe.Pointer(&out[0]), n) != n {
		return nil, errors.New("hostless: the platform lost the response")
	}
	return out, nil
}
