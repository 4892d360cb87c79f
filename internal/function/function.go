// Package function is the domain of the FaaS half: functions, their
// immutable versions, invocation requests and responses, invocation records,
// and the Runtime contract that every runtime implements.
//
// It must never import HTTP servers, stores or runtimes: every other package
// depends on it, and it depends on nothing of the platform.
package function

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultProject is the project every stored thing belongs to until
// multi-project support lands.
const DefaultProject = "default"

// Runtimes a function can name.
const (
	RuntimeWasm = "wasm"
	// RuntimeProcess is any Linux executable speaking the Lambda Runtime
	// API: the code's bootstrap, or the file the handler names.
	RuntimeProcess = "process"
	// RuntimeNodeJS and RuntimePython run Lambda handlers ("index.handler")
	// through the platform's shims on the host's node and python3.
	RuntimeNodeJS = "nodejs"
	RuntimePython = "python"
)

// IsProcess reports whether a runtime runs sandboxed processes.
func IsProcess(runtime string) bool {
	return runtime == RuntimeProcess || runtime == RuntimeNodeJS || runtime == RuntimePython
}

// Network modes of process functions.
const (
	NetworkNone     = "none"     // loopback only: the Runtime API
	NetworkOutbound = "outbound" // the internet, not the host nor private ranges
)

// Contracts say how a function is called.
const (
	// ContractAuto lets the runtime detect the contract from the module's exports.
	ContractAuto = ""
	// ContractCGI is a WASI command module called in the CGI style: one instance per request.
	ContractCGI = "cgi"
	// ContractSDK is a reactor built with the Go SDK: warm instances serve request after request.
	ContractSDK = "sdk"
	// ContractLambda is a process speaking the AWS Lambda Runtime API.
	ContractLambda = "lambda"
)

// Limits on a function's configuration.
const (
	DefaultMemoryMB = 128
	MinMemoryMB     = 1
	MaxMemoryMB     = 4096
	DefaultTimeout  = 10 * time.Second
	MinTimeout      = time.Millisecond
	MaxTimeout      = 15 * time.Minute
	MaxEnvVars      = 256
	MaxEnvBytes     = 64 << 10
	// MaxConcurrency bounds concurrency.max; MaxQueueTimeout bounds
	// concurrency.queue_timeout; idle_timeout lies between MinIdleTimeout
	// and MaxIdleTimeout.
	MaxConcurrency  = 10000
	MaxQueueTimeout = 5 * time.Minute
	MinIdleTimeout  = time.Second
	MaxIdleTimeout  = 24 * time.Hour
	// MaxMinInstances bounds min_instances.
	MaxMinInstances = 100
)

// Concurrency limits one version's concurrent invocations. A zero field
// means the platform's default (serve --max-concurrency, a 10 s queue).
type Concurrency struct {
	// Max is the most invocations of the version that run at once (like
	// Lambda's reserved concurrency); more wait in a bounded queue.
	Max int `json:"max,omitzero"`
	// PerInstance is how many invocations one instance takes at once: 1 for
	// wasm, whose instances are single-threaded.
	PerInstance int `json:"per_instance,omitzero"`
	// QueueTimeout is how long a call waits for a free slot before it is
	// refused with 429 and Retry-After.
	QueueTimeout Duration `json:"queue_timeout,omitzero"`
}

// Spec is what a deploy says about one function: its code (by content hash)
// and configuration. Two equal specs make the same version.
type Spec struct {
	Runtime  string            `json:"runtime"`
	Code     string            `json:"code"` // "sha256:<hex>" of the artifact
	Contract string            `json:"contract,omitempty"`
	MemoryMB int               `json:"memory"`
	Timeout  Duration          `json:"timeout"`
	Env      map[string]string `json:"env,omitempty"`
	// Secrets name the secrets the function gets as environment
	// variables, sorted; their values are resolved when an instance
	// starts and never stored here.
	Secrets []string `json:"secrets,omitempty"`
	// Buckets grants the function temporary credentials for the object
	// storage's buckets, by name: BucketRead, BucketWrite or
	// BucketReadWrite. The credentials and the endpoint reach it as AWS's
	// variables (AWS_ACCESS_KEY_ID, ..., AWS_ENDPOINT_URL_S3).
	Buckets map[string]string `json:"buckets,omitempty"`
	// Handler names the entry point of a process function: "index.handler"
	// for nodejs and python, the executable (when there is no bootstrap)
	// for process.
	Handler string `json:"handler,omitempty"`
	// Network is a process function's network: none or outbound.
	Network string `json:"network,omitempty"`
	// NetworkAllow are IPv4 ranges (CIDR) that network outbound may reach
	// although they are the host's own, private or link-local.
	NetworkAllow []string `json:"network_allow,omitempty"`
	// AllowedHosts are the hosts a wasm function may call over HTTP, as
	// host or host:port, with a leading "*." matching any subdomain. None
	// by default: every outbound call is refused.
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// Concurrency limits concurrent invocations; zero fields take the
	// platform's defaults.
	Concurrency Concurrency `json:"concurrency,omitzero"`
	// IdleTimeout stops an instance idle this long (scale to zero); zero
	// takes the platform's default (serve --idle-timeout).
	IdleTimeout Duration `json:"idle_timeout,omitzero"`
	// MinInstances are kept started while the version serves, idle or not
	// (like Lambda's provisioned concurrency): calls up to this many
	// concurrent ones never wait for a cold start.
	MinInstances int `json:"min_instances,omitzero"`
	// RateLimit bounds calls per second, for the function and per client IP.
	RateLimit RateLimit `json:"rate_limit,omitzero"`
	// Budget caps the function's GB-seconds per hour and per day.
	Budget Budget `json:"budget,omitzero"`
	// Retry governs async invocations (and trigger messages) that fail.
	Retry Retry `json:"retry,omitzero"`
	// Schedule runs the function on a cron schedule ("*/5 * * * *",
	// "@hourly", "@every 30s") in Timezone (an IANA name; default UTC).
	Schedule string `json:"schedule,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// Triggers run the function on broker messages and platform events.
	Triggers []Trigger `json:"triggers,omitempty"`
	// CORS, when set, is the function's cross-origin policy: the gateway
	// applies it on /fn/{name} URLs and on routes without one of their own.
	CORS *CORS `json:"cors,omitempty"`
	// Limits are the request and response payload limits of synchronous
	// calls; zero fields take the server's maximums.
	Limits Limits `json:"limits,omitzero"`
	// Auth is who may call the function's URL (/fn/{name}): public (the
	// default), user, admin or key:SCOPE; routes may set their own.
	Auth string `json:"auth,omitempty"`
	// InvokeMode is how a synchronous HTTP call's response reaches its
	// client, as Lambda's InvokeMode: InvokeBuffered (or empty) whole,
	// within the response limits; InvokeStream as the function writes and
	// flushes it.
	InvokeMode string `json:"invoke_mode,omitempty"`
}

// Budget is a ceiling on what a function may use, in GB-seconds (billed
// milliseconds times memory), per clock hour and per UTC day; 0 sets none.
// Past it, calls are refused (429) until the window ends.
type Budget struct {
	GBSecondsPerHour float64 `json:"gb_seconds_per_hour,omitzero"`
	GBSecondsPerDay  float64 `json:"gb_seconds_per_day,omitzero"`
}

// MaxBudget bounds a budget's GB-seconds.
const MaxBudget = 1e12

// RateLimit is a token bucket for the version and one per client IP; a
// zero rate sets no limit. A refused call gets 429 with Retry-After.
type RateLimit struct {
	RPS        float64 `json:"rps,omitzero"`          // sustained calls per second
	Burst      int     `json:"burst,omitzero"`        // calls at once above it (default: max(1, rps))
	PerIPRPS   float64 `json:"per_ip_rps,omitzero"`   // the same per client IP
	PerIPBurst int     `json:"per_ip_burst,omitzero"` // (default: max(1, per_ip_rps))
}

// MaxRPS bounds the rates of RateLimit.
const MaxRPS = 1e6

// Function is a named function and what its live alias serves.
type Function struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	// Version is the live alias's version: the one that serves /fn/{name},
	// or, with a canary, the calls the canary doesn't take.
	Version int `json:"version"`
	// CanaryVersion and CanaryWeight are the live alias's canary, if any.
	CanaryVersion int       `json:"canary_version,omitzero"`
	CanaryWeight  int       `json:"canary_weight,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Version is one immutable version of a function.
type Version struct {
	Project   string    `json:"project"`
	Function  string    `json:"function"`
	Number    int       `json:"version"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"created_at"`
}

// Errors shared by the domain.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// ValidName reports whether name is a DNS label: 1 to 63 lowercase letters,
// digits and hyphens, not starting or ending with a hyphen. Every
// invocation checks its name, so this is a loop, not a regexp.
func ValidName(name string) error {
	if !isDNSLabel(name) {
		return fmt.Errorf("%w: function name %q is not a DNS label (1-63 characters of a-z, 0-9 and '-', not starting or ending with '-')", ErrInvalid, name)
	}
	return nil
}

func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Invoke modes of Spec.InvokeMode.
const (
	InvokeBuffered = "buffered"
	InvokeStream   = "stream"
)

// Streams reports whether s's HTTP responses stream (InvokeMode stream).
func (s *Spec) Streams() bool { return s.InvokeMode == InvokeStream }

// Normalize fills defaults into s.
func (s *Spec) Normalize() {
	if s.MemoryMB == 0 {
		s.MemoryMB = DefaultMemoryMB
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	slices.Sort(s.Secrets)
	if IsProcess(s.Runtime) {
		if s.Contract == ContractAuto {
			s.Contract = ContractLambda
		}
		if s.Network == "" {
			s.Network = NetworkOutbound
		}
	}
}

var codeRef = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Validate checks s after Normalize; errors name the field and the accepted values.
func (s *Spec) Validate() error {
	if err := ValidateAuth(s.Auth); err != nil {
		return err
	}
	switch s.InvokeMode {
	case "", InvokeBuffered, InvokeStream:
	default:
		return fmt.Errorf("%w: invoke_mode %q is not supported (accepted: buffered, stream)", ErrInvalid, s.InvokeMode)
	}
	switch s.Runtime {
	case RuntimeWasm:
		switch s.Contract {
		case ContractAuto, ContractCGI, ContractSDK:
		default:
			return fmt.Errorf("%w: contract %q is not supported for wasm (accepted: cgi, sdk, or empty to detect)", ErrInvalid, s.Contract)
		}
		if s.Handler != "" || s.Network != "" {
			return fmt.Errorf("%w: handler and network are settings of process functions, not of wasm ones", ErrInvalid)
		}
		if err := validAllowedHosts(s.AllowedHosts); err != nil {
			return err
		}
	case RuntimeProcess, RuntimeNodeJS, RuntimePython:
		if len(s.AllowedHosts) > 0 {
			return fmt.Errorf("%w: allowed_hosts is a setting of wasm functions (a process function's outbound network is network: outbound)", ErrInvalid)
		}
		if err := s.validateProcess(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: runtime %q is not supported (accepted: wasm, process, nodejs, python)", ErrInvalid, s.Runtime)
	}
	if !codeRef.MatchString(s.Code) {
		return fmt.Errorf("%w: code %q must be \"sha256:\" and 64 lowercase hex digits", ErrInvalid, s.Code)
	}
	if s.MemoryMB < MinMemoryMB || s.MemoryMB > MaxMemoryMB {
		return fmt.Errorf("%w: memory %d MB is out of range (%d to %d)", ErrInvalid, s.MemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	if t := time.Duration(s.Timeout); t < MinTimeout || t > MaxTimeout {
		return fmt.Errorf("%w: timeout %s is out of range (%s to %s)", ErrInvalid, t, MinTimeout, MaxTimeout)
	}
	if len(s.Env) > MaxEnvVars {
		return fmt.Errorf("%w: env has %d variables (at most %d)", ErrInvalid, len(s.Env), MaxEnvVars)
	}
	size := 0
	for k, v := range s.Env {
		if err := validEnvName(k); err != nil {
			return err
		}
		for _, c := range v {
			if c == 0 {
				return fmt.Errorf("%w: env %s contains a NUL byte", ErrInvalid, k)
			}
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvBytes {
		return fmt.Errorf("%w: env is %d bytes (at most %d)", ErrInvalid, size, MaxEnvBytes)
	}
	if err := s.validSecrets(); err != nil {
		return err
	}
	if err := s.validBuckets(); err != nil {
		return err
	}
	return s.validateScaling()
}

func (s *Spec) validateScaling() error {
	c := s.Concurrency
	if c.Max < 0 || c.Max > MaxConcurrency {
		return fmt.Errorf("%w: concurrency.max %d is out of range (1 to %d, or 0 for the platform default)", ErrInvalid, c.Max, MaxConcurrency)
	}
	if c.PerInstance < 0 || c.PerInstance > 1 {
		return fmt.Errorf("%w: concurrency.per_instance %d is not supported: wasm and lambda instances take 1 invocation at a time", ErrInvalid, c.PerInstance)
	}
	if t := time.Duration(c.QueueTimeout); t < 0 || t > MaxQueueTimeout {
		return fmt.Errorf("%w: concurrency.queue_timeout %s is out of range (0 to %s)", ErrInvalid, t, MaxQueueTimeout)
	}
	r := s.RateLimit
	if r.RPS < 0 || r.RPS > MaxRPS || r.PerIPRPS < 0 || r.PerIPRPS > MaxRPS || r.RPS != r.RPS || r.PerIPRPS != r.PerIPRPS {
		return fmt.Errorf("%w: rate_limit rates must be 0 to %g calls per second", ErrInvalid, float64(MaxRPS))
	}
	if r.Burst < 0 || r.Burst > MaxRPS || r.PerIPBurst < 0 || r.PerIPBurst > MaxRPS {
		return fmt.Errorf("%w: rate_limit bursts must be 0 to %d", ErrInvalid, int(MaxRPS))
	}
	if b := s.Budget; !(b.GBSecondsPerHour >= 0 && b.GBSecondsPerHour <= MaxBudget && b.GBSecondsPerDay >= 0 && b.GBSecondsPerDay <= MaxBudget) {
		return fmt.Errorf("%w: budget GB-seconds must be 0 (no budget) to %g", ErrInvalid, float64(MaxBudget))
	}
	if s.MinInstances < 0 || s.MinInstances > MaxMinInstances {
		return fmt.Errorf("%w: min_instances %d is out of range (0 to %d)", ErrInvalid, s.MinInstances, MaxMinInstances)
	}
	if c.Max > 0 && s.MinInstances > c.Max {
		return fmt.Errorf("%w: min_instances %d is more than concurrency.max %d", ErrInvalid, s.MinInstances, c.Max)
	}
	if t := time.Duration(s.IdleTimeout); t != 0 && (t < MinIdleTimeout || t > MaxIdleTimeout) {
		return fmt.Errorf("%w: idle_timeout %s is out of range (%s to %s, or 0 for the platform default)", ErrInvalid, t, MinIdleTimeout, MaxIdleTimeout)
	}
	if err := s.Retry.Validate(); err != nil {
		return err
	}
	if err := s.validateTriggers(); err != nil {
		return err
	}
	if err := s.Limits.Validate(); err != nil {
		return err
	}
	if s.CORS != nil {
		if err := s.CORS.Validate(); err != nil {
			return err
		}
	}
	if s.Timezone != "" && s.Schedule == "" {
		return fmt.Errorf("%w: timezone needs a schedule", ErrInvalid)
	}
	if s.Schedule != "" {
		if _, err := ParseSchedule(s.Schedule, s.Timezone); err != nil {
			return err
		}
	}
	return nil
}

// MaxHandlerLen bounds handler; MaxNetworkAllow bounds network_allow;
// MaxAllowedHosts bounds allowed_hosts.
const (
	MaxHandlerLen   = 256
	MaxNetworkAllow = 32
	MaxAllowedHosts = 32
)

// validAllowedHosts checks allowed_hosts: at most MaxAllowedHosts entries,
// each a host (a DNS name, an IPv4 address or a bracketed IPv6 one) with an
// optional :port, and a DNS name may start with "*." to match any of its
// subdomains.
func validAllowedHosts(hosts []string) error {
	if len(hosts) > MaxAllowedHosts {
		return fmt.Errorf("%w: allowed_hosts has %d entries (at most %d)", ErrInvalid, len(hosts), MaxAllowedHosts)
	}
	for _, h := range hosts {
		if err := ValidAllowedHost(h); err != nil {
			return fmt.Errorf("%w: allowed_hosts %q %v (accepted: host, host:port, *.domain, [ipv6]:port)", ErrInvalid, h, err)
		}
	}
	return nil
}

// ValidAllowedHost checks one allowed_hosts entry; the error completes a
// sentence that starts with the entry.
func ValidAllowedHost(h string) error {
	if h == "" || len(h) > 260 {
		return errors.New("must be 1 to 260 characters")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return errors.New("has an unclosed '['")
		}
		host, port = h[1:end], h[end+1:]
		if port != "" && port[0] != ':' {
			return errors.New("has text after ']' that is not a :port")
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return errors.New("is not an IPv6 address in brackets")
		}
	} else {
		if i := strings.LastIndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i:]
		}
		name := strings.TrimPrefix(host, "*.")
		if name == "" || strings.Contains(name, "*") {
			return errors.New("may use '*' only as a leading \"*.\"")
		}
		for _, label := range strings.Split(name, ".") {
			if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
				return errors.New("is not a host name")
			}
			for _, c := range label {
				if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
					return errors.New("is not a host name")
				}
			}
		}
	}
	if port != "" {
		n := 0
		for _, c := range port[1:] {
			if c < '0' || c > '9' || n > 65535 {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		if n < 1 || n > 65535 {
			return errors.New("has a port that is not 1 to 65535")
		}
	}
	return nil
}

func (s *Spec) validateProcess() error {
	if s.Contract != ContractLambda {
		return fmt.Errorf("%w: contract %q is not supported for %s (accepted: lambda)", ErrInvalid, s.Contract, s.Runtime)
	}
	if s.Network != NetworkNone && s.Network != NetworkOutbound {
		return fmt.Errorf("%w: network %q is not supported (accepted: none, outbound)", ErrInvalid, s.Network)
	}
	if len(s.NetworkAllow) > 0 && s.Network != NetworkOutbound {
		return fmt.Errorf("%w: network_allow needs network: outbound", ErrInvalid)
	}
	if len(s.NetworkAllow) > MaxNetworkAllow {
		return fmt.Errorf("%w: network_allow has %d ranges (at most %d)", ErrInvalid, len(s.NetworkAllow), MaxNetworkAllow)
	}
	for _, c := range s.NetworkAllow {
		ip, n, err := net.ParseCIDR(c)
		if err != nil || ip.To4() == nil || !ip.Equal(n.IP) {
			return fmt.Errorf("%w: network_allow %q is not an IPv4 range such as 10.1.0.0/16", ErrInvalid, c)
		}
	}
	h := s.Handler
	if len(h) > MaxHandlerLen {
		return fmt.Errorf("%w: handler is longer than %d characters", ErrInvalid, MaxHandlerLen)
	}
	for _, c := range h {
		if !(c == '_' || c == '.' || c == '/' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("%w: handler %q may hold only letters, digits and . _ - /", ErrInvalid, h)
		}
	}
	if strings.HasPrefix(h, "/") || strings.Contains(h, "..") {
		return fmt.Errorf("%w: handler %q must be a path inside the code, without '..'", ErrInvalid, h)
	}
	if s.Runtime != RuntimeProcess {
		if i := strings.LastIndexByte(h, '.'); i <= 0 || i == len(h)-1 {
			return fmt.Errorf("%w: handler %q of a %s function must be FILE.FUNCTION, such as index.handler", ErrInvalid, h, s.Runtime)
		}
	}
	return nil
}

func validEnvName(k string) error {
	if k == "" || len(k) > 256 {
		return fmt.Errorf("%w: env name %q must be 1 to 256 characters", ErrInvalid, k)
	}
	for i, c := range k {
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: env name %q must be letters, digits and '_', not starting with a digit", ErrInvalid, k)
		}
	}
	return nil
}

// Equal reports whether two normalized specs make the same version.
func (s *Spec) Equal(o *Spec) bool {
	if s.Runtime != o.Runtime || s.Code != o.Code || s.Contract != o.Contract || s.Handler != o.Handler || s.Network != o.Network ||
		!slices.Equal(s.NetworkAllow, o.NetworkAllow) || !slices.Equal(s.AllowedHosts, o.AllowedHosts) ||
		!slices.Equal(s.Secrets, o.Secrets) || !maps.Equal(s.Buckets, o.Buckets) || s.MemoryMB != o.MemoryMB || s.Timeout != o.Timeout || len(s.Env) != len(o.Env) ||
		s.Concurrency != o.Concurrency || s.IdleTimeout != o.IdleTimeout || s.MinInstances != o.MinInstances ||
		s.RateLimit != o.RateLimit || s.Budget != o.Budget || s.Schedule != o.Schedule || s.Timezone != o.Timezone ||
		s.Retry.Retries() != o.Retry.Retries() || s.Retry.MaxAge != o.Retry.MaxAge || s.Retry.Backoff != o.Retry.Backoff ||
		!reflect.DeepEqual(s.Triggers, o.Triggers) && len(s.Triggers)+len(o.Triggers) > 0 || !s.CORS.Equal(o.CORS) || s.Limits != o.Limits || s.Auth != o.Auth ||
		s.Streams() != o.Streams() {
		return false
	}
	for k, v := range s.Env {
		if ov, ok := o.Env[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s").
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("%w: duration must be a string such as \"10s\"", ErrInvalid)
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return fmt.Errorf("%w: duration %s: %v", ErrInvalid, b, err)
	}
	*d = Duration(v)
	return nil
}

// ArtifactKey is the blob key of the artifact a code reference names.
func ArtifactKey(code string) string {
	return "artifacts/" + strings.Replace(code, ":", "/", 1)
}
