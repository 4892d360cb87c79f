// Package bus is Hostless's message bus: durable work queues (async invocations, retries, dead
// letters) on NATS JetStream. The same code runs against a NATS server embedded in the process
// (single node) and against an external NATS cluster, chosen by Config.URL.
//
// Package bus knows nothing of functions, invocations or HTTP; it must never import the store, the
// invoker or the gateway.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors of the bus.
var (
	// ErrInvalid reports a bad Config, queue name or consumer configuration.
	ErrInvalid = errors.New("bus: invalid argument")
	// ErrQueueFull reports a Publish to a queue at its QueueMaxMsgs or QueueMaxBytes.
	ErrQueueFull = errors.New("bus: the queue is full")
)

// Config says where the bus is and how it stores messages. The zero value of each field means its
// default.
type Config struct {
	// URL is a NATS URL (nats://host:4222) of an external server with JetStream. Empty: an embedded
	// server, in this process, listening on no port.
	URL string `yaml:"url" json:"url"`
	// Dir is the embedded server's JetStream store directory (required when URL is empty).
	Dir string `yaml:"dir" json:"dir"`
	// Prefix prefixes every stream, subject and consumer name, so that tests and several clusters
	// can share one NATS server. Letters, digits, '_' and '-' only. Default "hostless_".
	Prefix string `yaml:"prefix" json:"prefix"`
	// SyncAlways makes the embedded server fsync every write before acknowledging it. Off by default:
	// data written without fsync survives kill -9 of the process (the kernel holds it); only power
	// loss needs fsync, and it costs ~15x in publish throughput. Ignored for an external server.
	SyncAlways bool `yaml:"sync_always" json:"sync_always"`
	// DedupWindow is how long a message ID is remembered for deduplication. Default 2 minutes.
	DedupWindow time.Duration `yaml:"dedup_window" json:"dedup_window"`
	// QueueMaxMsgs and QueueMaxBytes bound each queue and each dead-letter stream: past them a
	// Publish fails with ErrQueueFull (nothing already stored is dropped). Defaults 1,000,000
	// messages and 1 GiB.
	QueueMaxMsgs  int64 `yaml:"queue_max_msgs" json:"queue_max_msgs"`
	QueueMaxBytes int64 `yaml:"queue_max_bytes" json:"queue_max_bytes"`
}

// Defaults of the queues' bounds.
const (
	DefaultQueueMaxMsgs  = 1_000_000
	DefaultQueueMaxBytes = 1 << 30
)

// EmbeddedMaxPayload is the largest message the embedded server takes; an
// external server's is its own max_payload setting (MaxPayload).
const EmbeddedMaxPayload = 8 << 20

// DefaultPrefix is the Prefix of a zero Config.
const DefaultPrefix = "hostless_"

// DefaultDedupWindow is the DedupWindow of a zero Config.
const DefaultDedupWindow = 2 * time.Minute

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{0,32}$`)
)

// Validate checks c, naming the bad field.
func (c Config) Validate() error {
	if c.URL == "" && c.Dir == "" {
		return fmt.Errorf("%w: dir: required for the embedded server (url is empty)", ErrInvalid)
	}
	if !prefixRE.MatchString(c.Prefix) {
		return fmt.Errorf("%w: prefix %q: up to 32 letters, digits, '_' or '-'", ErrInvalid, c.Prefix)
	}
	if c.DedupWindow < 0 {
		return fmt.Errorf("%w: dedup_window: must not be negative", ErrInvalid)
	}
	return nil
}

// Bus is a connection to JetStream, and the embedded server if it runs one.
type Bus struct {
	cfg Config
	srv *server.Server // nil with an external server
	nc  *nats.Conn
	js  jetstream.JetStream

	closeOnce sync.Once
}

// Open connects to the server of cfg, starting the embedded one if cfg.URL is empty. Close releases
// what Open acquired, even after a partial start.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.QueueMaxMsgs == 0 {
		cfg.QueueMaxMsgs = DefaultQueueMaxMsgs
	}
	if cfg.QueueMaxBytes == 0 {
		cfg.QueueMaxBytes = DefaultQueueMaxBytes
	}
	b := &Bus{cfg: cfg}
	if err := b.open(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) open(ctx context.Context) error {
	opts := []nats.Option{nats.Name("hostless"), nats.MaxReconnects(-1)}
	url := b.cfg.URL
	if url == "" {
		srv, err := server.NewServer(&server.Options{
			ServerName: "hostless",
			DontListen: true,
			JetStream:  true,
			StoreDir:   b.cfg.Dir,
			SyncAlways: b.cfg.SyncAlways,
			// Room for a 6 MiB event with its headers (NATS's default is 1 MiB).
			MaxPayload: EmbeddedMaxPayload,
			NoSigs:     true,
			NoLog:      true,
		})
		if err != nil {
			return fmt.Errorf("bus: embedded server: %w", err)
		}
		b.srv = srv
		go srv.Start()
		wait := 10 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = time.Until(dl)
		}
		if !srv.ReadyForConnections(wait) {
			return fmt.Errorf("bus: embedded server not ready after %s", wait)
		}
		opts = append(opts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("bus: connect %s: %w", b.where(), err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("bus: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("bus: jetstream on %s: %w", b.where(), err)
	}
	b.js = js
	return nil
}

// where names the server for messages, without the URL's credentials.
func (b *Bus) where() string {
	if b.cfg.URL == "" {
		return "embedded server"
	}
	var out []string
	for _, one := range strings.Split(b.cfg.URL, ",") {
		u, err := url.Parse(one)
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		u.User = nil
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// Close closes the connection and shuts the embedded server down, waiting for it to finish.
func (b *Bus) Close() {
	b.closeOnce.Do(b.close)
}

func (b *Bus) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Conn is the bus's NATS connection (to the embedded server or the
// external one), for core NATS subscribers such as triggers.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Subject returns the bus's subject for name: the prefix, "events.", then
// name. Platform events are published there.
func (b *Bus) Subject(name string) string { return b.cfg.Prefix + "events." + name }

// Emit publishes data on core NATS subject Subject(name): at most once, to
// whoever listens now (platform events; nothing waits for them).
func (b *Bus) Emit(name string, data []byte) error {
	if err := b.nc.Publish(b.Subject(name), data); err != nil {
		return fmt.Errorf("emit %s: %w", name, err)
	}
	return nil
}

// Connected reports whether the connection to the server is up.
func (b *Bus) Connected() bool { return b.nc != nil && b.nc.IsConnected() }

// Embedded reports whether the bus runs its own server in this process.
func (b *Bus) Embedded() bool { return b.srv != nil }

// MaxPayload is the largest message the server takes, headers included.
func (b *Bus) MaxPayload() int64 { return b.nc.MaxPayload() }

// Prefix is the prefix of the bus's streams and subjects.
func (b *Bus) Prefix() string { return b.cfg.Prefix }
