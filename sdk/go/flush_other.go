//go:build !wasip1

package hostless

// responseFlush answers as a platform that doesn't stream: outside wasm
// (native builds and their tests) responses stay buffered.
func responseFlush([]byte) int32 { return -1 }
