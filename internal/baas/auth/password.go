package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id with OWASP's recommended parameters (19 MiB,
// two passes, one lane), stored in the PHC string form so that parameters
// can change later without invalidating stored hashes.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16

	// MinPasswordLen and MaxPasswordBytes bound a password: long enough to
	// resist guessing, short enough that hashing it costs a bounded time.
	MinPasswordLen   = 8
	MaxPasswordBytes = 256
)

// commonPasswords are refused whatever their length: the first guesses of
// every credential-stuffing list.
var commonPasswords = map[string]bool{
	"password": true, "password1": true, "password123": true, "12345678": true, "123456789": true,
	"1234567890": true, "qwertyuiop": true, "qwerty123": true, "iloveyou": true, "11111111": true,
	"00000000": true, "abc12345": true, "letmein1": true, "welcome1": true, "admin123": true,
	"sunshine": true, "princess": true, "football": true, "baseball": true, "trustno1": true,
	"passw0rd": true, "superman": true, "1q2w3e4r": true, "zaq12wsx": true, "changeme": true,
}

// ErrWeakPassword is the policy's refusal; its wrapping message says why.
var ErrWeakPassword = errors.New("weak password")

// CheckPassword applies the password policy: MinPasswordLen characters or
// more, at most MaxPasswordBytes bytes, not a common password, not the
// email address.
func CheckPassword(password, email string) error {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: the password is not valid UTF-8", ErrWeakPassword)
	case n < MinPasswordLen:
		return fmt.Errorf("%w: use at least %d characters", ErrWeakPassword, MinPasswordLen)
	case len(password) > MaxPasswordBytes:
		return fmt.Errorf("%w: use at most %d bytes", ErrWeakPassword, MaxPasswordBytes)
	case strings.TrimSpace(password) == "":
		return fmt.Errorf("%w: the password is only spaces", ErrWeakPassword)
	case commonPasswords[strings.ToLower(password)]:
		return fmt.Errorf("%w: that password is among the most common ones; choose another", ErrWeakPassword)
	case email != "" && strings.EqualFold(password, email):
		return fmt.Errorf("%w: the password can't be the email address", ErrWeakPassword)
	}
	return nil
}

// hasher bounds how many argon2id hashes run at once: each takes 19 MiB,
// and a flood of logins must queue rather than take the machine's memory.
type hasher struct{ slots chan struct{} }

func newHasher(n int) *hasher {
	if n < 1 {
		n = 1
	}
	return &hasher{slots: make(chan struct{}, n)}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// Hash returns password's argon2id hash in PHC form.
func (h *hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	h.release()
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC hash encoded. An empty
// or malformed hash never matches, but costs a hash all the same, so that
// timing tells no account that exists from one that doesn't.
func (h *hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	salt, want, m, t, p, ok := parsePHC(encoded)
	if !ok {
		salt, want, m, t, p = make([]byte, argonSaltLen), make([]byte, argonKeyLen), argonMemoryKiB, argonTime, argonThreads
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	h.release()
	return ok && subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC reads "$argon2id$v=19$m=..,t=..,p=..$salt$key", refusing
// parameters outside what this package would write (a stored hash is
// trusted, but not to cost a gigabyte).
func parsePHC(s string) (salt, key []byte, m, t uint32, p uint8, ok bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, nil, 0, 0, 0, false
	}
	var mm, tt, pp uint64
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mm, &tt, &pp); err != nil || n != 3 ||
		mm < 1024 || mm > 256*1024 || tt < 1 || tt > 10 || pp < 1 || pp > 16 {
		return nil, nil, 0, 0, 0, false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return nil, nil, 0, 0, 0, false
	}
	return salt, key, uint32(mm), uint32(tt), uint8(pp), true
}
