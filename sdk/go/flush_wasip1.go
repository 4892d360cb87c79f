//go:build wasip1

package hostless

import "unsafe"

//go:wasmimport hostless response_flush
func hostResponseFlush(ptr unsafe.Pointer, size int32) int32

// responseFlush sends a part of the response: 0 when sent, -1 when the
// call doesn't stream, -2 when the response was cut short.
func responseFlush(part []byte) int32 {
	if len(part) == 0 {
		return 0
	}
	return hostResponseFlush(unsafe.Pointer(&part[0]), int32(len(part)))
}
