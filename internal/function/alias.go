package function

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// LiveAlias is the alias that serves /fn/{name}. Every function has it
// from its creation; a deploy points it at the version it makes.
const LiveAlias = "live"

// Canary weights are whole percents of an alias's calls.
const (
	MinCanaryWeight = 1
	MaxCanaryWeight = 99
)

// ErrAliasNotFound: the function exists, the alias asked for doesn't.
var ErrAliasNotFound = errors.New("no such alias")

// Alias is a name for a version of a function, as Lambda's aliases and
// Knative's traffic targets are: /fn/{name}@{alias} calls what it points
// at. It may split its calls between two versions (a canary): each call
// goes to CanaryVersion with probability CanaryWeight/100, else to
// Version. Versions are immutable; an alias moves.
type Alias struct {
	Project  string `json:"project"`
	Function string `json:"function"`
	Name     string `json:"name"`
	// Version takes the calls the canary doesn't.
	Version int `json:"version"`
	// CanaryVersion, when not 0, takes CanaryWeight percent of the calls
	// (MinCanaryWeight to MaxCanaryWeight); without a canary the weight is 0.
	CanaryVersion int       `json:"canary_version,omitzero"`
	CanaryWeight  int       `json:"canary_weight,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// HasCanary reports whether a splits its calls with a canary version.
func (a *Alias) HasCanary() bool { return a.CanaryVersion != 0 }

// Serves reports whether calls through a may reach version n.
func (a *Alias) Serves(n int) bool {
	return n == a.Version || (a.CanaryVersion != 0 && n == a.CanaryVersion)
}

// ValidAliasName reports whether name can name an alias: a DNS label, as
// function names are, that is not all digits, so that @3 always means
// version 3.
func ValidAliasName(name string) error {
	if !isDNSLabel(name) || allDigits(name) {
		return fmt.Errorf("%w: alias name %q must be a DNS label (1-63 characters of a-z, 0-9 and '-', not starting or ending with '-') with at least one letter or '-', so it can't be read as a version number", ErrInvalid, name)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Validate checks a's name, versions and weight; errors name the field and
// the accepted values.
func (a *Alias) Validate() error {
	if err := ValidAliasName(a.Name); err != nil {
		return err
	}
	if a.Version < 1 {
		return fmt.Errorf("%w: version %d: versions are numbered from 1", ErrInvalid, a.Version)
	}
	if a.CanaryVersion == 0 {
		if a.CanaryWeight != 0 {
			return fmt.Errorf("%w: canary_weight %d without a canary_version: name the version that takes the weight", ErrInvalid, a.CanaryWeight)
		}
		return nil
	}
	if a.CanaryVersion < 0 {
		return fmt.Errorf("%w: canary_version %d: versions are numbered from 1", ErrInvalid, a.CanaryVersion)
	}
	if a.CanaryVersion == a.Version {
		return fmt.Errorf("%w: canary_version %d is the alias's version: a canary is another version", ErrInvalid, a.CanaryVersion)
	}
	switch w := a.CanaryWeight; {
	case w == 0:
		return fmt.Errorf("%w: canary_weight is missing: the canary takes %d to %d percent of the calls", ErrInvalid, MinCanaryWeight, MaxCanaryWeight)
	case w >= 100:
		return fmt.Errorf("%w: canary_weight %d: a canary takes %d to %d percent of the calls; to send it every call, promote it", ErrInvalid, w, MinCanaryWeight, MaxCanaryWeight)
	case w < MinCanaryWeight:
		return fmt.Errorf("%w: canary_weight %d: a canary takes %d to %d percent of the calls", ErrInvalid, w, MinCanaryWeight, MaxCanaryWeight)
	}
	return nil
}

// ParseRef reads what follows the @ of /fn/{name}@{ref}: a version number
// when it is an integer (which may be out of range: callers check), else
// an alias name. The empty ref is the live alias.
func ParseRef(ref string) (alias string, version int) {
	if ref == "" {
		return LiveAlias, 0
	}
	if n, err := strconv.Atoi(ref); err == nil {
		return "", n
	}
	return ref, 0
}

// VersionNotFoundError names the version a function lacks; it matches
// ErrVersionNotFound.
type VersionNotFoundError struct {
	Function string
	Version  int
}

func (e *VersionNotFoundError) Error() string {
	return fmt.Sprintf("function %q has no version %d", e.Function, e.Version)
}

// Is makes errors.Is(err, ErrVersionNotFound) hold.
func (e *VersionNotFoundError) Is(target error) bool { return target == ErrVersionNotFound }

// AliasNotFoundError names the alias a function lacks; it matches
// ErrAliasNotFound.
type AliasNotFoundError struct {
	Function string
	Alias    string
}

func (e *AliasNotFoundError) Error() string {
	return fmt.Sprintf("function %q has no alias %q", e.Function, e.Alias)
}

// Is makes errors.Is(err, ErrAliasNotFound) hold.
func (e *AliasNotFoundError) Is(target error) bool { return target == ErrAliasNotFound }
