//go:build !wasip1

package hostless

import "errors"

// send fails outside the platform: native builds and their tests use
// net/http's own transport, which the package leaves alone there.
func send([]byte) ([]byte, error) {
	return nil, errors.New("hostless: Transport sends requests only inside a wasm function (GOOS=wasip1)")
}
