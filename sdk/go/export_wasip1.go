//go:build wasip1

package hostless

import "unsafe"

var (
	inBuf []byte
	rw    responseWriter
)

// hostlessBuffer returns a pointer to at least size bytes for the host to
// write a request into.
//
//go:wasmexport hostless_buffer
func hostlessBuffer(size int32) int32 {
	if int(size) > cap(inBuf) {
		inBuf = make([]byte, size)
	}
	inBuf = inBuf[:size]
	if size == 0 {
		inBuf = inBuf[:1]
	}
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

// hostlessHandle handles the request of size bytes in the buffer and
// returns ptr<<32 | len of the encoded response.
//
//go:wasmexport hostless_handle
func hostlessHandle(size int32) int64 {
	out := serve(inBuf[:size], &rw)
	if len(out) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}
