package function

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxPayloadBytes bounds a function's payload limits; the server's own
// maximums (max_request_bytes, max_response_bytes) bound them
// further at deploy.
const MaxPayloadBytes = 1 << 30

// Limits are a function's payload limits in bytes: the request body it
// accepts and the response body it may answer on synchronous calls (zero
// takes the server's maximum, 6 MiB by default, Lambda's 6 MB), and the
// body of an async event (zero takes DefaultEventBytes, Lambda's 256 KB).
type Limits struct {
	Request  int64 `json:"request,omitzero"`
	Response int64 `json:"response,omitzero"`
	Event    int64 `json:"event,omitzero"`
}

// DefaultEventBytes is an async event's body limit when limits.event is
// not set, as Lambda's; MaxEventBytes bounds limits.event (the request
// limit, and what the embedded bus takes).
const (
	DefaultEventBytes = 256 << 10
	MaxEventBytes     = 6 << 20
)

// EventLimit is the limit of an async event's body.
func (l Limits) EventLimit() int64 {
	if l.Event == 0 {
		return DefaultEventBytes
	}
	return l.Event
}

// Validate checks the limits' range.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"request", l.Request}, {"response", l.Response}} {
		if f.v < 0 || f.v > MaxPayloadBytes {
			return fmt.Errorf("%w: limits.%s %d bytes is out of range (0 for the server's maximum, up to %s)", ErrInvalid, f.name, f.v, FormatBytes(MaxPayloadBytes))
		}
	}
	if l.Event < 0 || l.Event > MaxEventBytes {
		return fmt.Errorf("%w: limits.event %d bytes is out of range (0 for the default %s, up to %s)", ErrInvalid, l.Event, FormatBytes(DefaultEventBytes), FormatBytes(MaxEventBytes))
	}
	return nil
}

// ParseBytes reads a size: a number of bytes ("1048576") or a whole number
// with a unit: B, KB, MB, GB, as binary multiples as Lambda's "6 MB" is
// (KiB, MiB and GiB are accepted too).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' })
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	num = strings.TrimSpace(num)
	mult := int64(1)
	switch unit {
	case "", "B":
	case "KB", "KIB", "K":
		mult = 1 << 10
	case "MB", "MIB", "M":
		mult = 1 << 20
	case "GB", "GIB", "G":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%w: size %q: unit %q is not B, KB, MB or GB", ErrInvalid, Short(s), Short(unit))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > MaxPayloadBytes/mult+1 {
		return 0, fmt.Errorf("%w: size %q is not a whole number of bytes, KB, MB or GB such as 6MB", ErrInvalid, Short(s))
	}
	return n * mult, nil
}

// FormatBytes renders a size for a message: "6 MiB" when it is a whole
// number of MiB, else bytes.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
