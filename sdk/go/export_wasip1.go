//go:build wasip1

package hostless

import "unsafe"

var (
	inBuf []byte
	rw    responseWriter
)

// hostlessBuffer returns a pointer to at least size bytes for the host to
// write a request into. The buffer stays valid, at the same address, until
// the next call: the host writes smaller requests into it without asking
// again.
//
//go:wasmexport hostless_buffer
func hostlessBuffer(size int32) int32 {
	if int(size) > cap(inBuf) || cap(inBuf) == 0 {
		inBuf = make([]byte, max(int(size), 1))
	}
	inBuf = inBuf[:cap(inBuf)]
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

// hostlessHandle handles the request of size bytes in the buffer and
// returns ptr<<32 | len of the encoded response.
//
//go:wasmexport hostless_handle
func hostlessHandle(size int32) int64 {
	if int(size) > len(inBuf) {
		size = int32(len(inBuf)) // the host broke the ABI; decoding will fail
	}
	out := serve(inBuf[:size], &rw)
	if len(out) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}
