// Package trigger connects message brokers to a handler: it receives messages from NATS, JetStream,
// AMQP 0.9.1 (RabbitMQ), MQTT 3.1.1 or Redis streams, hands them to the handler in batches, acknowledges
// each message at the broker only after the handler succeeded with it, retries failures with
// exponential backoff and passes what keeps failing to a DeadLetter function. The platform maps a
// function's `triggers:` entries to Configs and runs each with a Handler that invokes the function.
//
// Package trigger knows nothing of functions, invocations, HTTP or the store; it must never import
// another Hostless package.
//
// # Delivery
//
// Delivery is at least once: a message is acknowledged at the broker after the handler reported it
// done, or after DeadLetter stored it and returned nil. A message the trigger gives up on in any other
// way (Stop, a lost connection, a crash) is redelivered by the broker, so handlers must be idempotent.
// Core NATS is the exception: it has no acknowledgements, so a message is delivered at most once by the
// broker (lost if no trigger is subscribed, or if the process dies while holding it); the trigger
// still retries and dead-letters it in process. MQTT with QoS 0 is at most once too.
//
// Failed messages, and only those, are retried in process: the trigger holds them unacknowledged and
// calls the handler again with a batch of just the failed ones, after a backoff of
// random(0, min(5m, Backoff*2^(attempt-1))) ("full jitter"), until MaxAttempts attempts in all. Then
// the message goes to DeadLetter with the reason, and is acknowledged once DeadLetter returned nil. If
// DeadLetter fails, the trigger keeps the message and retries DeadLetter with backoff; on Stop the
// message is left to the broker to redeliver. A batch holds its worker (one of Concurrency) while it
// waits to be retried, so retries slow intake rather than pile up.
//
// Message.Attempt counts deliveries where the broker tells them: a JetStream message redelivered after
// a crash starts at its delivery count, a Redis pending entry at its delivery count, an AMQP message
// at x-delivery-count+1 (quorum queues) or at 2 when only the redelivered flag is set, an MQTT message
// at 2 when its DUP flag is set. So a message that crashes the process every time is dead-lettered
// eventually on JetStream, Redis and quorum queues.
//
// Messages larger than Options.MaxMessageBytes (6 MiB by default) are not handed on: they go to
// DeadLetter, with Data nil and a reason giving the size.
//
// # Brokers
//
//   - nats: a subscription to Subject in the queue group Queue (default: one group per trigger Name,
//     so several nodes running the same trigger share the messages). At most once, see above.
//   - jetstream: a durable pull consumer on Stream (which must exist), named from Name, with explicit
//     acks, FilterSubject Subject, DeliverPolicy new (a new trigger sees messages published after its
//     first start; later nothing published while it is stopped is missed), MaxAckPending
//     BatchSize*Concurrency and no MaxDeliver (the trigger dead-letters, the server never drops).
//     AckWait (default 30s) may be shorter than a handler takes: the trigger sends InProgress for every
//     message it holds every AckWait/3. Messages held when the trigger stops are Nak'ed, so they are
//     redelivered at once. (A NATS 2.9 server may first hand a Nak'ed message to the stopped
//     trigger's last pull request, which nobody reads, so it comes back after AckWait, and may
//     deliver it twice; 2.10+ servers drop requests without interest.)
//   - amqp: a consumer on Queue (declared durable, non-exclusive, if it does not exist), manual acks,
//     prefetch BatchSize*Concurrency. Unacknowledged messages are requeued by RabbitMQ when the channel
//     closes. RabbitMQ closes a channel that holds a message longer than its consumer timeout
//     (30 minutes by default): keep retries within it.
//   - mqtt: a persistent session (clean session false, client ID from Name) subscribed to Topic at QoS
//     (default 1), acknowledging (PUBACK) only after success, so messages published while the trigger
//     is disconnected and messages it held when it stopped are delivered on the next connect. The
//     broker bounds the unacknowledged messages in flight (mosquitto: max_inflight_messages, 20 by
//     default), which bounds the batches that can form. Several nodes with the same Name would take
//     each other's session: run an MQTT trigger on one node, or use a shared subscription topic
//     ($share/group/topic) with distinct Names.
//   - redis: a consumer group Group (default from Name) on the stream Stream, created with MKSTREAM at
//     `$` if missing (new messages only, like jetstream). The consumer is named Name@hostname, stable
//     across restarts: on every (re)connect the trigger first re-reads its own pending entries (ID 0),
//     so entries delivered before a crash are handled again; then it reads new ones with XREADGROUP
//     COUNT BatchSize BLOCK. It acknowledges with XACK. A stream entry's field "data" becomes
//     Message.Data and the other fields Message.Headers; an entry without "data" is handed on as a
//     JSON object of all its fields.
//
// Connections that break, or brokers that are down at Start, are retried with exponential backoff
// up to 30 seconds; Status shows the state. URLs and errors in Status and logs never carry
// passwords.
package trigger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Types of triggers, the values of Config.Type.
const (
	TypeNATS      = "nats"
	TypeJetStream = "jetstream"
	TypeAMQP      = "amqp"
	TypeMQTT      = "mqtt"
	TypeRedis     = "redis"
)

// Limits and defaults of a Config.
const (
	DefaultBatchSize       = 1
	MaxBatchSize           = 1000
	MaxBatchWindow         = 5 * time.Minute
	DefaultConcurrency     = 1
	MaxConcurrency         = 1000
	DefaultMaxAttempts     = 3
	MaxMaxAttempts         = 100
	DefaultBackoff         = time.Second
	MaxBackoff             = 5 * time.Minute
	DefaultAckWait         = 30 * time.Second
	MinAckWait             = time.Second
	MaxAckWait             = 12 * time.Hour
	DefaultQoS             = 1
	DefaultMaxMessageBytes = 6 << 20
	// MaxBatchBytes bounds the data of one batch (Lambda's 6 MB): a batch
	// ends before the message that would pass it.
	MaxBatchBytes = 6 << 20
	// MaxHeld bounds BatchSize*Concurrency: the messages a trigger holds.
	MaxHeld              = 10000
	maxNameLen           = 200
	maxReconnectWait     = 30 * time.Second
	defaultReconnectWait = 500 * time.Millisecond
)

// ErrInvalid reports a bad Config; errors.Is(err, ErrInvalid) holds for every *FieldError.
var ErrInvalid = errors.New("trigger: invalid configuration")

// FieldError says which Config field is wrong and why. Its message is "field: problem", for the
// caller to prefix with where the Config came from ("triggers[0].").
type FieldError struct {
	Field   string // the yaml name of the field, e.g. "batch_size"
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Config is one trigger: where its messages come from and how they are batched and retried. The zero
// value of each field means its default.
type Config struct {
	// Type is the broker: "nats", "jetstream", "amqp", "mqtt" or "redis".
	Type string `yaml:"type" json:"type"`
	// URL is the broker: nats://host:4222, amqp://user:pass@host:5672/vhost (or amqps://),
	// tcp://host:1883 (or mqtt://, ssl://, mqtts://, ws://, wss://), redis://host:6379/0 (or
	// rediss://). For nats and jetstream an empty URL means the platform's own bus, Options.NATS.
	URL string `yaml:"url" json:"url"`
	// Subject is the nats subject (wildcards allowed; required), or the jetstream filter subject
	// (optional).
	Subject string `yaml:"subject" json:"subject"`
	// Stream is the jetstream stream (required; it must exist) or the redis stream key (required).
	Stream string `yaml:"stream" json:"stream"`
	// Queue is the amqp queue (required) or the nats queue group (default derived from Name).
	Queue string `yaml:"queue" json:"queue"`
	// Topic is the mqtt topic filter (required).
	Topic string `yaml:"topic" json:"topic"`
	// Group is the redis consumer group (default derived from Name).
	Group string `yaml:"group" json:"group"`
	// QoS is the mqtt subscription's quality of service: 0 (at most once), 1 (the default) or 2.
	QoS *int `yaml:"qos" json:"qos"`
	// BatchSize is the most messages per handler call: default 1, at most 1000.
	BatchSize int `yaml:"batch_size" json:"batch_size"`
	// BatchWindow is how long to wait for a batch to fill after its first message: default 0 (hand
	// on what has arrived), at most 5 minutes.
	BatchWindow time.Duration `yaml:"batch_window" json:"batch_window"`
	// Concurrency is how many batches are handled at once: default 1, at most 1000.
	Concurrency int `yaml:"concurrency" json:"concurrency"`
	// MaxAttempts is how many times a message is handed on in all before it is dead-lettered:
	// default 3 (the first try and 2 retries), at most 100.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// Backoff is the base of the exponential backoff between attempts: default 1s, at most 5 minutes.
	Backoff time.Duration `yaml:"backoff" json:"backoff"`
	// AckWait is how long JetStream waits for an ack before redelivering: default 30s, 1s to 12h.
	// The trigger keeps held messages alive with InProgress, so it need not exceed the handler's time.
	AckWait time.Duration `yaml:"ack_wait" json:"ack_wait"`
	// Name is the trigger's stable identity (e.g. "project/function/0"), required. Durable consumer
	// names, client IDs, queue groups and consumer groups derive from it.
	Name string `yaml:"name" json:"name"`
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	switch c.Type {
	case TypeNATS:
		if c.Queue == "" {
			c.Queue = ident(c.Name, 64)
		}
	case TypeRedis:
		if c.Group == "" {
			c.Group = ident(c.Name, 64)
		}
	}
	return c
}

// Validate checks c, naming the bad field.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	schemes := map[string][]string{
		TypeNATS:      {"nats", "tls", "ws", "wss"},
		TypeJetStream: {"nats", "tls", "ws", "wss"},
		TypeAMQP:      {"amqp", "amqps"},
		TypeMQTT:      {"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"},
		TypeRedis:     {"redis", "rediss"},
	}
	accepted, ok := schemes[c.Type]
	if !ok {
		return bad("type", "%q is not one of nats, jetstream, amqp, mqtt, redis", c.Type)
	}
	if c.Name == "" {
		return bad("name", "required")
	}
	if len(c.Name) > maxNameLen {
		return bad("name", "longer than %d bytes", maxNameLen)
	}
	if c.URL == "" && c.Type != TypeNATS && c.Type != TypeJetStream {
		return bad("url", "required for type %s", c.Type)
	}
	if c.URL != "" {
		// A nats URL may list several servers.
		first, _, _ := strings.Cut(c.URL, ",")
		u, err := url.Parse(first)
		if err != nil || u.Host == "" {
			return bad("url", "not a URL of the form %s://host:port", accepted[0])
		}
		if !contains(accepted, u.Scheme) {
			return bad("url", "scheme %q is not one of %s for type %s", u.Scheme, strings.Join(accepted, ", "), c.Type)
		}
	}

	// Each field is required by some types and meaningless to the others.
	uses := map[string][]string{
		"subject":  {TypeNATS, TypeJetStream},
		"stream":   {TypeJetStream, TypeRedis},
		"queue":    {TypeAMQP, TypeNATS},
		"topic":    {TypeMQTT},
		"group":    {TypeRedis},
		"qos":      {TypeMQTT},
		"ack_wait": {TypeJetStream},
	}
	set := map[string]bool{
		"subject": c.Subject != "", "stream": c.Stream != "", "queue": c.Queue != "",
		"topic": c.Topic != "", "group": c.Group != "", "qos": c.QoS != nil, "ack_wait": c.AckWait != 0,
	}
	for _, f := range []string{"subject", "stream", "queue", "topic", "group", "qos", "ack_wait"} {
		if set[f] && !contains(uses[f], c.Type) {
			return bad(f, "not used by type %s", c.Type)
		}
	}
	required := map[string]string{TypeNATS: "subject", TypeJetStream: "stream", TypeAMQP: "queue", TypeMQTT: "topic", TypeRedis: "stream"}
	if f := required[c.Type]; !set[f] {
		return bad(f, "required for type %s", c.Type)
	}

	switch c.Type {
	case TypeNATS, TypeJetStream:
		if c.Subject != "" && !validSubject(c.Subject) {
			return bad("subject", "%q is not a NATS subject (tokens separated by '.', no spaces)", c.Subject)
		}
		if c.Type == TypeJetStream && strings.ContainsAny(c.Stream, " \t\r\n.*>/\\") {
			return bad("stream", "%q: a stream name has no spaces, '.', '*', '>' or slashes", c.Stream)
		}
		if c.Queue != "" && strings.ContainsAny(c.Queue, " \t\r\n") {
			return bad("queue", "%q: a queue group has no spaces", c.Queue)
		}
	case TypeAMQP:
		if len(c.Queue) > 255 {
			return bad("queue", "longer than 255 bytes")
		}
	case TypeMQTT:
		if strings.ContainsAny(c.Topic, "\x00") || len(c.Topic) > 65535 {
			return bad("topic", "not an MQTT topic filter")
		}
		if q := c.QoS; q != nil && (*q < 0 || *q > 2) {
			return bad("qos", "%d is not 0, 1 or 2", *q)
		}
	}

	ranges := []struct {
		field    string
		val, max int64
	}{
		{"batch_size", int64(c.BatchSize), MaxBatchSize},
		{"batch_window", int64(c.BatchWindow), int64(MaxBatchWindow)},
		{"concurrency", int64(c.Concurrency), MaxConcurrency},
		{"max_attempts", int64(c.MaxAttempts), MaxMaxAttempts},
		{"backoff", int64(c.Backoff), int64(MaxBackoff)},
		{"ack_wait", int64(c.AckWait), int64(MaxAckWait)},
	}
	for _, r := range ranges {
		if r.val < 0 {
			return bad(r.field, "must not be negative")
		}
		if r.val > r.max {
			if strings.HasSuffix(r.field, "_size") || r.field == "concurrency" || r.field == "max_attempts" {
				return bad(r.field, "%d is above the maximum %d", r.val, r.max)
			}
			return bad(r.field, "%s is above the maximum %s", time.Duration(r.val), time.Duration(r.max))
		}
	}
	if c.AckWait != 0 && c.AckWait < MinAckWait {
		return bad("ack_wait", "%s is below the minimum %s", c.AckWait, MinAckWait)
	}
	if held := max(c.BatchSize, 1) * max(c.Concurrency, 1); held > MaxHeld {
		return bad("concurrency", "batch_size x concurrency is %d, above the %d messages a trigger may hold", held, MaxHeld)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validSubject reports whether s is a NATS subject or subject filter.
func validSubject(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		if tok == "" || (tok == ">" && i != len(tokens)-1) {
			return false
		}
		if len(tok) > 1 && strings.ContainsAny(tok, "*>") {
			return false
		}
	}
	return true
}

// Message is one message from the broker.
type Message struct {
	// ID identifies the message at its broker: the JetStream "stream:sequence", the Redis entry ID,
	// the AMQP message-id or the Nats-Msg-Id header when set, otherwise an ID the trigger makes up.
	ID string
	// Source is the Config.Type the message came from.
	Source string
	// Subject is where the message was published: the NATS subject, MQTT topic, AMQP routing key
	// (the queue if empty), or the Redis stream key.
	Subject string
	Data    []byte
	// Headers are the message's headers (the first value of each for NATS; AMQP values formatted with
	// %v; the non-"data" fields of a Redis entry). Nil when there are none.
	Headers map[string]string
	// Time is when the broker stored the message where it says so, else when it arrived.
	Time time.Time
	// Attempt is 1 on the first delivery and counts up with each retry.
	Attempt int
}

// Handler handles one batch, messages in the order the broker delivered them. It returns the
// indexes (into batch) of the messages that failed; nil means all succeeded. A non-nil error means
// the whole batch failed. Its ctx is cancelled when Stop gives up waiting for it.
type Handler func(ctx context.Context, batch []Message) (failed []int, err error)

// DeadLetter stores a message that failed its last attempt; reason says why. The trigger
// acknowledges the message at the broker only after DeadLetter returned nil.
type DeadLetter func(ctx context.Context, m Message, reason string) error

// Options are what the platform gives a trigger besides its Config.
type Options struct {
	// NATS is the platform's own bus, used by nats and jetstream triggers with an empty URL. The
	// trigger never closes it.
	NATS *nats.Conn
	// Log receives the trigger's warnings and errors. Default slog.Default().
	Log *slog.Logger
	// DeadLetter stores messages that failed their last attempt. Nil: they are logged at error
	// level and acknowledged (dropped), as a Lambda event source mapping without a failure
	// destination does.
	DeadLetter DeadLetter
	// MaxMessageBytes bounds the Data handed on; bigger messages are dead-lettered. Default 6 MiB.
	MaxMessageBytes int
	// Hostname names the Redis consumer (Name@Hostname). Default os.Hostname().
	Hostname string
	// ReconnectWait is the first wait before reconnecting; it doubles up to 30s. Default 500ms.
	ReconnectWait time.Duration
}

// Status is a trigger's state, for the console and metrics.
type Status struct {
	// Connected is true while the trigger has a working connection and subscription.
	Connected bool `json:"connected"`
	// LastError is the last connection or broker error (without passwords), kept after recovery.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Reconnects counts connections made after a failed attempt or a lost connection.
	Reconnects int `json:"reconnects"`
	// Received counts messages from the broker (redeliveries included).
	Received uint64 `json:"received"`
	// Succeeded counts messages the handler reported done.
	Succeeded uint64 `json:"succeeded"`
	// Failed counts failed attempts (a message failing three times counts three).
	Failed uint64 `json:"failed"`
	// DeadLettered counts messages given to DeadLetter (or dropped without one) and acknowledged.
	DeadLettered uint64 `json:"dead_lettered"`
}

// delivery is a message in the trigger's hands, with what settles it at its broker.
type delivery struct {
	msg Message
	// tooBig is the size of a message over the limit (its Data is dropped), else 0.
	tooBig int
	// ack acknowledges the message: done, or dead-lettered.
	ack func(ctx context.Context) error
	// release, if not nil, hands the message back for redelivery when the trigger gives it up
	// (JetStream Nak). Brokers that redeliver on their own when the session ends leave it nil.
	release func()
	// touch, if not nil, tells the broker the message is still being worked on.
	touch func()
	// forget, if not nil, is called once the trigger is done with the message either way.
	forget func()
}

// broker is one kind of message broker.
type broker interface {
	// connect opens a session ready to receive: connection, channel, consumer, subscription.
	connect(ctx context.Context) error
	// receive passes messages to deliver until ctx is done (it returns nil) or the session breaks
	// (it returns why). deliver returns false when the trigger is stopping.
	receive(ctx context.Context, deliver func(*delivery) bool) error
	// disconnect ends the session; after a failure, and at Stop after the batches are done.
	disconnect()
	// health amends a Status for brokers whose clients reconnect on their own.
	health(*Status)
}

// Trigger is a running trigger. Start makes one; Stop ends it.
type Trigger struct {
	cfg  Config
	h    Handler
	opt  Options
	log  *slog.Logger
	b    broker
	idpf string // prefix of made-up message IDs
	idn  atomic.Uint64

	recv       context.Context // done when Stop is called: receive no more
	stopRecv   context.CancelFunc
	work       context.Context // done when Stop gives up waiting: handlers' ctx
	stopWork   context.CancelFunc
	abandoned  atomic.Bool // Stop gave up: settle nothing more at the broker
	in         chan *delivery
	batches    chan []*delivery
	intake     sync.WaitGroup // the receive loop and the batcher
	workers    sync.WaitGroup
	stopOnce   sync.Once
	stopErr    error
	keepalives chan struct{} // closed to end the keep-alive loop

	mu         sync.Mutex
	connected  bool
	failedOnce bool // a connect failed or a session broke since the last connect
	lastErr    string
	lastErrAt  time.Time
	reconnects int
	held       map[*delivery]struct{}
	final      bool // Stop has disconnected

	received, succeeded, failed, deadLettered atomic.Uint64
}

// Start validates cfg and starts the trigger: it connects in the background and keeps
// reconnecting, so a broker that is down is not an error. ctx only carries values: the trigger runs
// until Stop.
func Start(ctx context.Context, cfg Config, h Handler, opt Options) (*Trigger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("trigger: nil handler")
	}
	if (cfg.Type == TypeNATS || cfg.Type == TypeJetStream) && cfg.URL == "" && opt.NATS == nil {
		return nil, &FieldError{Field: "url", Problem: "required: the platform gave no NATS connection"}
	}
	cfg = cfg.withDefaults()
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.MaxMessageBytes <= 0 {
		opt.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opt.ReconnectWait <= 0 {
		opt.ReconnectWait = defaultReconnectWait
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	t := &Trigger{
		cfg:        cfg,
		h:          h,
		opt:        opt,
		log:        opt.Log.With("trigger", cfg.Name, "type", cfg.Type),
		idpf:       hex.EncodeToString(rnd[:]) + "-",
		in:         make(chan *delivery, cfg.BatchSize*cfg.Concurrency),
		batches:    make(chan []*delivery),
		keepalives: make(chan struct{}),
		held:       make(map[*delivery]struct{}),
	}
	base := context.WithoutCancel(ctx)
	t.recv, t.stopRecv = context.WithCancel(base)
	t.work, t.stopWork = context.WithCancel(base)
	switch cfg.Type {
	case TypeNATS:
		t.b = &natsBroker{t: t}
	case TypeJetStream:
		t.b = &jetStreamBroker{natsBroker: natsBroker{t: t}}
	case TypeAMQP:
		t.b = &amqpBroker{t: t}
	case TypeMQTT:
		t.b = &mqttBroker{t: t}
	case TypeRedis:
		t.b = &redisBroker{t: t}
	}
	t.intake.Add(2)
	go t.run()
	go t.batch()
	t.workers.Add(cfg.Concurrency)
	for range cfg.Concurrency {
		go t.worker()
	}
	if cfg.Type == TypeJetStream {
		go t.keepAlive(cfg.AckWait / 3)
	}
	return t, nil
}

// Status reports the trigger's state.
func (t *Trigger) Status() Status {
	t.mu.Lock()
	s := Status{
		Connected:   t.connected,
		LastError:   t.lastErr,
		LastErrorAt: t.lastErrAt,
		Reconnects:  t.reconnects,
	}
	t.mu.Unlock()
	s.Received = t.received.Load()
	s.Succeeded = t.succeeded.Load()
	s.Failed = t.failed.Load()
	s.DeadLettered = t.deadLettered.Load()
	t.b.health(&s)
	return s
}

// Stop stops receiving, waits for the batches being handled (their retries are abandoned, left to
// the broker to redeliver) and closes the connections. If ctx ends first, Stop cancels the handlers'
// context, settles nothing more at the broker (what was not acknowledged is redelivered) and
// returns ctx's error. Later calls return the first call's result.
func (t *Trigger) Stop(ctx context.Context) error {
	t.stopOnce.Do(func() {
		t.stopRecv()
		done := make(chan struct{})
		go func() {
			t.intake.Wait()
			t.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			t.abandoned.Store(true)
			t.stopErr = fmt.Errorf("trigger %s: stop: %w", t.cfg.Name, ctx.Err())
		}
		t.stopWork()
		close(t.keepalives)
		t.releaseHeld()
		t.mu.Lock()
		t.connected = false
		t.final = true
		t.mu.Unlock()
		t.b.disconnect()
	})
	return t.stopErr
}

// run connects and receives until Stop, reconnecting with backoff.
func (t *Trigger) run() {
	defer t.intake.Done()
	for n := 0; ; n++ {
		err := t.b.connect(t.recv)
		if err == nil {
			t.mu.Lock()
			t.connected = true
			if t.failedOnce {
				t.reconnects++
				t.failedOnce = false
			}
			t.mu.Unlock()
			n = 0
			err = t.b.receive(t.recv, t.deliver)
		}
		if t.recv.Err() != nil {
			// Stop disconnects once the batches are done; if it gave up waiting and did so already,
			// what this connect opened is closed here.
			t.mu.Lock()
			final := t.final
			t.mu.Unlock()
			if final {
				t.b.disconnect()
			}
			return
		}
		if err == nil {
			err = errors.New("session ended")
		}
		t.noteError(err)
		t.b.disconnect()
		if !sleep(t.recv, jitter(t.opt.ReconnectWait, maxReconnectWait, n, false)) {
			return
		}
	}
}

// noteError records a broken connection or a failed connect.
func (t *Trigger) noteError(err error) {
	msg := redact(err.Error(), t.cfg.URL)
	t.mu.Lock()
	t.connected = false
	t.failedOnce = true
	t.lastErr = msg
	t.lastErrAt = time.Now()
	t.mu.Unlock()
	t.log.Warn("trigger: broker connection", "url", redactURL(t.cfg.URL), "err", msg)
}

// noteLastError records an error of a client that reconnects on its own.
func (t *Trigger) noteLastError(err error) {
	msg := redact(err.Error(), t.cfg.URL)
	t.mu.Lock()
	t.lastErr = msg
	t.lastErrAt = time.Now()
	t.mu.Unlock()
	t.log.Warn("trigger: broker connection", "url", redactURL(t.cfg.URL), "err", msg)
}

// deliver takes a message from a broker into the pipeline. It returns false, having released the
// message, when the trigger is stopping.
func (t *Trigger) deliver(d *delivery) bool {
	t.received.Add(1)
	if d.msg.Attempt < 1 {
		d.msg.Attempt = 1
	}
	if d.msg.Source == "" {
		d.msg.Source = t.cfg.Type
	}
	if d.msg.ID == "" {
		d.msg.ID = t.idpf + fmt.Sprint(t.idn.Add(1))
	}
	if n := len(d.msg.Data); n > t.opt.MaxMessageBytes {
		d.tooBig, d.msg.Data = n, nil
	}
	t.mu.Lock()
	t.held[d] = struct{}{}
	t.mu.Unlock()
	select {
	case t.in <- d:
		return true
	case <-t.recv.Done():
		t.release(d)
		return false
	}
}

// batch groups the messages from the brokers into batches for the workers.
func (t *Trigger) batch() {
	defer t.intake.Done()
	defer close(t.batches)
	size, window := t.cfg.BatchSize, t.cfg.BatchWindow
	var carry *delivery // the message that did not fit in the last batch's bytes
	for {
		var b []*delivery
		if carry != nil {
			b, carry = append(b, carry), nil
		} else {
			select {
			case d := <-t.in:
				b = append(b, d)
			case <-t.recv.Done():
				t.drainIn()
				return
			}
		}
		bytes := len(b[0].msg.Data)
		// add takes d into the batch unless its bytes would pass
		// MaxBatchBytes; then d starts the next batch.
		add := func(d *delivery) bool {
			if bytes+len(d.msg.Data) > MaxBatchBytes {
				carry = d
				return false
			}
			b, bytes = append(b, d), bytes+len(d.msg.Data)
			return true
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if window > 0 {
			timer = time.NewTimer(window)
			timeout = timer.C
		}
	fill:
		for len(b) < size {
			if window == 0 {
				select {
				case d := <-t.in:
					if !add(d) {
						break fill
					}
				default:
					break fill
				}
				continue
			}
			select {
			case d := <-t.in:
				if !add(d) {
					break fill
				}
			case <-timeout:
				break fill
			case <-t.recv.Done():
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		select {
		case t.batches <- b:
		case <-t.recv.Done():
			for _, d := range b {
				t.release(d)
			}
			if carry != nil {
				t.release(carry)
			}
			t.drainIn()
			return
		}
	}
}

// drainIn releases the messages waiting for a batch when the trigger stops.
func (t *Trigger) drainIn() {
	for {
		select {
		case d := <-t.in:
			t.release(d)
		default:
			return
		}
	}
}

func (t *Trigger) worker() {
	defer t.workers.Done()
	for b := range t.batches {
		t.process(b)
	}
}

// process handles one batch to the end: success, dead letter, or Stop.
func (t *Trigger) process(pending []*delivery) {
	// Messages over the size limit go to the dead letters without a handler call.
	n := 0
	for _, d := range pending {
		if d.tooBig > 0 {
			t.deadLetter(d, fmt.Sprintf("message of %d bytes is over the limit of %d bytes", d.tooBig, t.opt.MaxMessageBytes))
			continue
		}
		pending[n] = d
		n++
	}
	pending = pending[:n]
	for len(pending) > 0 {
		msgs := make([]Message, len(pending))
		for i, d := range pending {
			msgs[i] = d.msg
		}
		failed, err := t.call(msgs)
		bad := make([]bool, len(pending))
		reason := ""
		if err != nil {
			reason = "handler error: " + err.Error()
			for i := range bad {
				bad[i] = true
			}
		} else {
			reason = "handler reported the message as failed"
			for _, i := range failed {
				if i < 0 || i >= len(bad) {
					t.log.Warn("trigger: handler returned a failed index out of range", "index", i, "batch", len(bad))
					continue
				}
				bad[i] = true
			}
		}
		var retry []*delivery
		for i, d := range pending {
			if !bad[i] {
				t.succeeded.Add(1)
				t.settle(d)
				continue
			}
			t.failed.Add(1)
			if d.msg.Attempt >= t.cfg.MaxAttempts {
				t.deadLetter(d, fmt.Sprintf("%s (attempt %d of %d)", reason, d.msg.Attempt, t.cfg.MaxAttempts))
				continue
			}
			retry = append(retry, d)
		}
		if len(retry) == 0 {
			return
		}
		if !sleep(t.recv, jitter(t.cfg.Backoff, MaxBackoff, retry[0].msg.Attempt-1, true)) {
			for _, d := range retry {
				t.release(d)
			}
			return
		}
		for _, d := range retry {
			d.msg.Attempt++
		}
		pending = retry
	}
}

// call runs the handler, turning a panic into an error.
func (t *Trigger) call(msgs []Message) (failed []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return t.h(t.work, msgs)
}

// deadLetter hands d to DeadLetter, retrying with backoff until it succeeds or the trigger stops,
// then acknowledges it.
func (t *Trigger) deadLetter(d *delivery, reason string) {
	if t.opt.DeadLetter == nil {
		t.log.Error("trigger: dropping a message that failed its last attempt (no dead letter destination)",
			"id", d.msg.ID, "subject", d.msg.Subject, "reason", reason)
		t.deadLettered.Add(1)
		t.settle(d)
		return
	}
	for n := 0; ; n++ {
		err := t.opt.DeadLetter(t.work, d.msg, reason)
		if err == nil {
			t.deadLettered.Add(1)
			t.settle(d)
			return
		}
		t.log.Warn("trigger: dead letter failed; retrying", "id", d.msg.ID, "err", err)
		if !sleep(t.recv, jitter(t.cfg.Backoff, maxReconnectWait, n, false)) {
			t.release(d)
			return
		}
	}
}

// settle acknowledges d at its broker, unless Stop gave up on the batches.
func (t *Trigger) settle(d *delivery) {
	if !t.forget(d) || t.abandoned.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.work), 10*time.Second)
	defer cancel()
	if err := d.ack(ctx); err != nil {
		// The broker will redeliver it: at least once.
		t.log.Warn("trigger: ack failed; the broker will redeliver", "id", d.msg.ID, "err", redact(err.Error(), t.cfg.URL))
	}
}

// release gives d back to its broker for redelivery.
func (t *Trigger) release(d *delivery) {
	if t.forget(d) && d.release != nil {
		d.release()
	}
}

// forget removes d from the held messages; it reports whether d was held (each message is settled
// or released once).
func (t *Trigger) forget(d *delivery) bool {
	t.mu.Lock()
	_, ok := t.held[d]
	delete(t.held, d)
	t.mu.Unlock()
	if ok && d.forget != nil {
		d.forget()
	}
	return ok
}

// releaseHeld releases every message still held (at Stop).
func (t *Trigger) releaseHeld() {
	t.mu.Lock()
	ds := make([]*delivery, 0, len(t.held))
	for d := range t.held {
		ds = append(ds, d)
	}
	t.mu.Unlock()
	for _, d := range ds {
		t.release(d)
	}
}

// keepAlive touches every held message each interval until Stop.
func (t *Trigger) keepAlive(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.keepalives:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		var ds []*delivery
		for d := range t.held {
			if d.touch != nil {
				ds = append(ds, d)
			}
		}
		t.mu.Unlock()
		for _, d := range ds {
			d.touch()
		}
	}
}

// jitter is the wait before attempt n+1 (n from 0): exponential from base, capped. Full jitter
// draws from [0, d); otherwise from [d/2, d), so reconnects never spin.
func jitter(base, limit time.Duration, n int, full bool) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if d <= 0 {
		return 0
	}
	if full {
		return time.Duration(mrand.Int64N(int64(d)))
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// sleep waits d, reporting false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ident derives a broker-safe name from a trigger Name: letters, digits, '_' and '-', at most max
// bytes, with a hash suffix so that distinct Names never map to the same identifier.
func ident(name string, max int) string {
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:4])
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	if len(b) > max-len(suffix) {
		b = b[:max-len(suffix)]
	}
	return string(b) + suffix
}

// redactURL returns rawURL with its password replaced, for logs.
func redactURL(rawURL string) string {
	if rawURL == "" {
		return "(platform bus)"
	}
	var out []string
	for _, one := range strings.Split(rawURL, ",") {
		u, err := url.Parse(one)
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		if u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.User("xxxxx") // a user name alone is a token (nats://TOKEN@host)
			}
		}
		out = append(out, u.Redacted())
	}
	return strings.Join(out, ",")
}

// redact removes the passwords of rawURL from s.
func redact(s, rawURL string) string {
	for _, one := range strings.Split(rawURL, ",") {
		u, err := url.Parse(one)
		if err != nil || u.User == nil {
			continue
		}
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username() // a token
		}
		if secret != "" {
			s = strings.ReplaceAll(s, one, redactURL(one))
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}
