package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the bus sets on messages. Callers' headers should not start with "Hostless-".
const (
	// HeaderID carries the caller's message ID; it survives dead-lettering and redrive, while
	// Nats-Msg-Id (the deduplication key) changes on redrive.
	HeaderID = "Hostless-Id"
	// HeaderDeliveries on a dead letter is how many times it was delivered.
	HeaderDeliveries = "Hostless-Deliveries"
	// HeaderReason on a dead letter says why it was dead-lettered.
	HeaderReason = "Hostless-Reason"
	// HeaderQueueSeq on a dead letter is its sequence in the queue's stream.
	HeaderQueueSeq = "Hostless-Queue-Seq"
	// HeaderFailedAt on a dead letter is when it was dead-lettered (RFC 3339, UTC).
	HeaderFailedAt = "Hostless-Failed-At"
	// HeaderPriorDeliveries on a redriven message counts its deliveries
	// before its redrives.
	HeaderPriorDeliveries = "Hostless-Prior-Deliveries"
	// HeaderRedrivenAt on a redriven message is when it was last redriven (RFC 3339, UTC).
	HeaderRedrivenAt = "Hostless-Redriven-At"
)

func (b *Bus) queueStream(q string) string  { return b.cfg.Prefix + "Q_" + q }
func (b *Bus) deadStream(q string) string   { return b.cfg.Prefix + "DLQ_" + q }
func (b *Bus) queueSubject(q string) string { return b.cfg.Prefix + "q." + q }
func (b *Bus) deadSubject(q string) string  { return b.cfg.Prefix + "dlq." + q }
func (b *Bus) consumerName(q string) string { return b.cfg.Prefix + "worker_" + q }

func checkQueue(q string) error {
	if !nameRE.MatchString(q) {
		return fmt.Errorf("%w: queue name %q: 1 to 64 letters, digits, '_' or '-'", ErrInvalid, q)
	}
	return nil
}

// EnsureQueue creates the queue's streams, or updates them to the current configuration. It is
// idempotent.
//
// A queue is a WorkQueue stream (a message is removed once acknowledged, so the stream holds exactly
// the accepted, unfinished work) with one durable consumer that every Consume call shares, and a
// limits stream of dead letters that keeps them until they are redriven.
func (b *Bus) EnsureQueue(ctx context.Context, queue string) error {
	if err := checkQueue(queue); err != nil {
		return err
	}
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.queueStream(queue),
		Subjects:    []string{b.queueSubject(queue)},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  b.cfg.DedupWindow,
		Discard:     jetstream.DiscardNew,
		MaxMsgs:     b.cfg.QueueMaxMsgs,
		MaxBytes:    b.cfg.QueueMaxBytes,
		Description: "hostless work queue " + queue,
	})
	if err != nil {
		return fmt.Errorf("ensure queue %s: %w", queue, err)
	}
	_, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.deadStream(queue),
		Subjects:    []string{b.deadSubject(queue)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  b.cfg.DedupWindow,
		Discard:     jetstream.DiscardNew, // a full dead-letter stream keeps its events in the queue
		MaxMsgs:     b.cfg.QueueMaxMsgs,
		MaxBytes:    b.cfg.QueueMaxBytes,
		Description: "hostless dead letters of " + queue,
	})
	if err != nil {
		return fmt.Errorf("ensure dead-letter stream of %s: %w", queue, err)
	}
	return nil
}

// Publish stores a message on the queue and returns once JetStream has acknowledged it as stored.
// A second message with the same msgID within the dedup window is dropped (and Publish returns
// nil), so a retried Publish never queues the work twice.
func (b *Bus) Publish(ctx context.Context, queue, msgID string, data []byte, headers map[string]string) error {
	if err := checkQueue(queue); err != nil {
		return err
	}
	m := nats.NewMsg(b.queueSubject(queue))
	m.Data = data
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		m.Header.Set(HeaderID, msgID)
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	opts = append(opts, jetstream.WithExpectStream(b.queueStream(queue)))
	if _, err := b.js.PublishMsg(ctx, m, opts...); err != nil {
		if full(err) {
			return fmt.Errorf("publish to %s: %w (%d messages or %d bytes)", queue, ErrQueueFull, b.cfg.QueueMaxMsgs, b.cfg.QueueMaxBytes)
		}
		return fmt.Errorf("publish to %s: %w", queue, err)
	}
	return nil
}

// full reports whether a publish failed on a stream's limits (DiscardNew):
// the server says so only in its error's text.
func full(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "maximum messages exceeded") || strings.Contains(msg, "maximum bytes exceeded")
}

// ConsumerConfig is how a queue is consumed.
type ConsumerConfig struct {
	// MaxAckPending bounds the messages being handled at once, across every process consuming the
	// queue (the server enforces it) and within this one. Default 1.
	MaxAckPending int
	// AckWait is how long the server waits for an Ack, Nak or InProgress before redelivering. It
	// must exceed the longest a handler runs (the function timeout), or running work is delivered
	// again; long handlers call InProgress. Default 30 seconds.
	AckWait time.Duration
	// MaxDeliver is how many times a message is delivered before it is dead-lettered. Default 5;
	// -1: no limit (the handler decides when to dead-letter, with Term or DeadLetter).
	MaxDeliver int
	// Backoff is the delay before the next delivery after the n-th failure (Nak with no delay, or a
	// handler that returned without settling the message); the last value repeats. Empty: redeliver
	// at once. It is applied by the bus, not as JetStream's BackOff, which would replace AckWait.
	Backoff []time.Duration
}

func (c *ConsumerConfig) defaults() error {
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 5
	}
	switch {
	case c.MaxAckPending < 0:
		return fmt.Errorf("%w: max_ack_pending: must be positive", ErrInvalid)
	case c.AckWait < 0:
		return fmt.Errorf("%w: ack_wait: must be positive", ErrInvalid)
	case c.MaxDeliver < -1:
		return fmt.Errorf("%w: max_deliver: must be positive, or -1 for no limit", ErrInvalid)
	}
	for _, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("%w: backoff: delays must not be negative", ErrInvalid)
		}
	}
	return nil
}

// Consume handles the queue's messages until ctx is done, then waits for running handlers and
// returns nil. Each message goes to handler in its own goroutine, at most MaxAckPending at once.
// A handler settles its message with Ack, Nak or Term; one that returns without doing so has failed
// (as Nak(0)). A failure on the last delivery (MaxDeliver) dead-letters the message.
// The queue must exist (EnsureQueue).
//
// Delivery is at least once: a handler still running when its AckWait ends on the last delivery
// is dead-lettered meanwhile, and a crash after the work but before the Ack repeats it, so handlers
// deduplicate by Message.ID. Every process consuming a queue shares one durable consumer, whose
// configuration is the latest Consume call's: give them all the same ConsumerConfig.
func (b *Bus) Consume(ctx context.Context, queue string, cfg ConsumerConfig, handler func(context.Context, *Message)) error {
	if err := checkQueue(queue); err != nil {
		return err
	}
	if err := cfg.defaults(); err != nil {
		return err
	}
	stream := b.queueStream(queue)
	cons, err := b.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       b.consumerName(queue),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		Description:   "hostless workers of " + queue,
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}

	// A message whose last delivery timed out (a handler slower than AckWait, a process killed
	// mid-handler) is never redelivered and stays in the WorkQueue stream; the server says so in an
	// advisory, and the bus dead-letters it from there.
	adv, err := b.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+stream+"."+b.consumerName(queue), func(m *nats.Msg) {
		var a struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries uint64 `json:"deliveries"`
		}
		if json.Unmarshal(m.Data, &a) != nil || a.StreamSeq == 0 {
			return
		}
		_ = b.deadLetterSeq(context.Background(), queue, a.StreamSeq, a.Deliveries, "max deliveries: ack wait expired")
	})
	if err != nil {
		return fmt.Errorf("consume %s: advisories: %w", queue, err)
	}
	defer adv.Unsubscribe()

	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.MaxAckPending)
	cc, err := cons.Consume(func(jm jetstream.Msg) {
		if ctx.Err() != nil {
			// Stopping: hand a prefetched message back rather than run it under a cancelled
			// context. On its last delivery it is left to AckWait and the advisory path.
			if md, err := jm.Metadata(); err == nil && (cfg.MaxDeliver < 0 || int(md.NumDelivered) < cfg.MaxDeliver) {
				_ = jm.Nak()
			}
			return
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m := newMessage(b, queue, &cfg, jm)
			handler(ctx, m)
			if !m.settled() {
				_ = m.Nak(0)
			}
		}()
	}, jetstream.PullMaxMessages(cfg.MaxAckPending))
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	wg.Wait()
	return nil
}

// Message is one delivery of a queued message.
type Message struct {
	// Data is the payload.
	Data []byte
	// Headers are the headers given to Publish (and, on a dead letter, the Hostless-* ones).
	Headers map[string]string
	// ID is the msgID given to Publish.
	ID string
	// NumDelivered counts deliveries, this one included (1 on the first).
	NumDelivered int
	// Prior counts the deliveries before the message's redrives (0 if it was never redriven).
	Prior int
	// RedrivenAt is when the message was last redriven (zero if never).
	RedrivenAt time.Time
	// Seq is the message's sequence in its stream.
	Seq uint64

	b     *Bus
	queue string
	cfg   *ConsumerConfig
	jm    jetstream.Msg
	mu    sync.Mutex
	done  bool
}

func newMessage(b *Bus, queue string, cfg *ConsumerConfig, jm jetstream.Msg) *Message {
	m := &Message{Data: jm.Data(), b: b, queue: queue, cfg: cfg, jm: jm}
	m.Headers = flatten(jm.Headers())
	m.ID = m.Headers[HeaderID]
	m.Prior, _ = strconv.Atoi(m.Headers[HeaderPriorDeliveries])
	m.RedrivenAt, _ = time.Parse(time.RFC3339Nano, m.Headers[HeaderRedrivenAt])
	if md, err := jm.Metadata(); err == nil {
		m.NumDelivered = int(md.NumDelivered)
		m.Seq = md.Sequence.Stream
	}
	return m
}

func flatten(h nats.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

func (m *Message) settled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}

// settle runs f once, for the first of Ack, Nak and Term.
func (m *Message) settle(f func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	m.done = true
	return nil
}

// Ack says the message was handled; it waits for the server to confirm, so an acknowledged message
// is never delivered again.
func (m *Message) Ack() error {
	return m.settle(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.jm.DoubleAck(ctx); err != nil {
			return fmt.Errorf("ack %s/%d: %w", m.queue, m.Seq, err)
		}
		return nil
	})
}

// Nak says the handling failed: the message is delivered again after delay (0: the consumer's
// Backoff for this attempt), or dead-lettered if this was its last delivery.
func (m *Message) Nak(delay time.Duration) error {
	return m.settle(func() error {
		if m.cfg.MaxDeliver > 0 && m.NumDelivered >= m.cfg.MaxDeliver {
			return m.deadLetter(fmt.Sprintf("failed on delivery %d of %d", m.NumDelivered, m.cfg.MaxDeliver), m.NumDelivered)
		}
		if delay == 0 && len(m.cfg.Backoff) > 0 {
			delay = m.cfg.Backoff[min(m.NumDelivered, len(m.cfg.Backoff))-1]
		}
		if err := m.jm.NakWithDelay(delay); err != nil {
			return fmt.Errorf("nak %s/%d: %w", m.queue, m.Seq, err)
		}
		return nil
	})
}

// InProgress resets the server's AckWait timer: a handler that may run longer than AckWait calls it
// periodically.
func (m *Message) InProgress() error {
	if err := m.jm.InProgress(); err != nil {
		return fmt.Errorf("in progress %s/%d: %w", m.queue, m.Seq, err)
	}
	return nil
}

// Term gives up on the message without further deliveries: it is dead-lettered with reason, so
// nothing is lost.
func (m *Message) Term(reason string) error {
	return m.settle(func() error {
		return m.deadLetter("terminated: "+reason, m.NumDelivered)
	})
}

// DeadLetter is Term with the reason as it is and the attempts to record (where the handler
// counts attempts itself rather than by deliveries): a redrive counts them as prior deliveries.
func (m *Message) DeadLetter(reason string, attempts int) error {
	return m.settle(func() error {
		return m.deadLetter(reason, attempts)
	})
}

// Release hands the message back undone, without counting a failure: it is delivered again
// (to any consumer) after delay. For a handler that stops (a shutdown), not one that failed.
func (m *Message) Release(delay time.Duration) error {
	return m.settle(func() error {
		if err := m.jm.NakWithDelay(delay); err != nil {
			return fmt.Errorf("release %s/%d: %w", m.queue, m.Seq, err)
		}
		return nil
	})
}

// deadLetter stores the message on the dead-letter stream, and only then terminates it.
func (m *Message) deadLetter(reason string, deliveries int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.b.publishDead(ctx, m.queue, m.Seq, m.jm.Headers(), m.jm.Data(), uint64(deliveries), reason); err != nil {
		return err
	}
	// Term, not TermWithReason: servers before 2.10.4 ignore the latter and leave the message
	// pending (the shared server here is 2.9); the reason is in the dead letter's headers.
	if err := m.jm.Term(); err != nil {
		return fmt.Errorf("term %s/%d: %w", m.queue, m.Seq, err)
	}
	return nil
}

// publishDead stores a copy of queue message seq on the dead-letter stream. Its dedup ID is the
// queue sequence, so the handler and the advisory path dead-lettering the same message store it once.
func (b *Bus) publishDead(ctx context.Context, queue string, seq uint64, h nats.Header, data []byte, deliveries uint64, reason string) error {
	d := nats.NewMsg(b.deadSubject(queue))
	d.Data = data
	for k, v := range h {
		if k == jetstream.MsgIDHeader {
			continue
		}
		d.Header[k] = v
	}
	d.Header.Set(HeaderDeliveries, strconv.FormatUint(deliveries, 10))
	d.Header.Set(HeaderReason, reason)
	d.Header.Set(HeaderQueueSeq, strconv.FormatUint(seq, 10))
	d.Header.Set(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	_, err := b.js.PublishMsg(ctx, d, jetstream.WithMsgID("dead-"+strconv.FormatUint(seq, 10)),
		jetstream.WithExpectStream(b.deadStream(queue)))
	if err != nil {
		return fmt.Errorf("dead-letter %s/%d: %w", queue, seq, err)
	}
	return nil
}

// deadLetterSeq dead-letters queue message seq from the stream itself, then deletes it there.
func (b *Bus) deadLetterSeq(ctx context.Context, queue string, seq, deliveries uint64, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := b.js.Stream(ctx, b.queueStream(queue))
	if err != nil {
		return err
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // settled meanwhile
	}
	if err != nil {
		return err
	}
	if err := b.publishDead(ctx, queue, seq, raw.Header, raw.Data, deliveries, reason); err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}

// DeadLetter is a message that failed its last delivery.
type DeadLetter struct {
	// Seq is its sequence in the dead-letter stream.
	Seq uint64
	// ID is the msgID it was published with.
	ID         string
	Data       []byte
	Headers    map[string]string
	Deliveries int
	Reason     string
	FailedAt   time.Time
}

// DeadLetters lists up to limit of the queue's dead letters, oldest first.
func (b *Bus) DeadLetters(ctx context.Context, queue string, limit int) ([]DeadLetter, error) {
	if err := checkQueue(queue); err != nil {
		return nil, err
	}
	var out []DeadLetter
	err := b.eachDead(ctx, queue, func(raw *jetstream.RawStreamMsg) (bool, error) {
		out = append(out, toDeadLetter(raw))
		return limit <= 0 || len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", queue, err)
	}
	return out, nil
}

func toDeadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	h := flatten(raw.Header)
	d := DeadLetter{Seq: raw.Sequence, ID: h[HeaderID], Data: raw.Data, Headers: h, Reason: h[HeaderReason]}
	d.Deliveries, _ = strconv.Atoi(h[HeaderDeliveries])
	d.FailedAt, _ = time.Parse(time.RFC3339Nano, h[HeaderFailedAt])
	return d
}

// eachDead calls f for each dead letter in order while it returns true.
func (b *Bus) eachDead(ctx context.Context, queue string, f func(*jetstream.RawStreamMsg) (bool, error)) error {
	s, err := b.js.Stream(ctx, b.deadStream(queue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // a queue never made has no dead letters
	}
	if err != nil {
		return err
	}
	var seq uint64 = 1
	for {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(b.deadSubject(queue)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		more, err := f(raw)
		if err != nil || !more {
			return err
		}
		seq = raw.Sequence + 1
	}
}

// Redrive moves every dead letter of the queue back onto it, with its original ID, data and
// headers, and returns how many it moved. Each is published (and acknowledged) before it is deleted
// from the dead-letter stream, so a failure part-way loses nothing; a retried Redrive does not queue
// a message twice within the dedup window.
func (b *Bus) Redrive(ctx context.Context, queue string) (int, error) {
	if err := checkQueue(queue); err != nil {
		return 0, err
	}
	ds, err := b.js.Stream(ctx, b.deadStream(queue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redrive %s: %w", queue, err)
	}
	info, err := ds.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("redrive %s: %w", queue, err)
	}
	// What is dead-lettered again while this runs waits for the next Redrive.
	last := info.State.LastSeq
	n := 0
	err = b.eachDead(ctx, queue, func(raw *jetstream.RawStreamMsg) (bool, error) {
		if raw.Sequence > last {
			return false, nil
		}
		m := nats.NewMsg(b.queueSubject(queue))
		m.Data = raw.Data
		for k, v := range raw.Header {
			switch k {
			case HeaderDeliveries, HeaderReason, HeaderQueueSeq, HeaderFailedAt, HeaderPriorDeliveries, HeaderRedrivenAt, jetstream.MsgIDHeader:
				continue
			}
			m.Header[k] = v
		}
		prior, _ := strconv.Atoi(raw.Header.Get(HeaderPriorDeliveries))
		delivered, _ := strconv.Atoi(raw.Header.Get(HeaderDeliveries))
		m.Header.Set(HeaderPriorDeliveries, strconv.Itoa(prior+delivered))
		m.Header.Set(HeaderRedrivenAt, time.Now().UTC().Format(time.RFC3339Nano))
		// The original msgID may still be in the queue's dedup window: redrive under a new one.
		id := "redrive-" + b.deadStream(queue) + "-" + strconv.FormatUint(raw.Sequence, 10)
		if _, err := b.js.PublishMsg(ctx, m, jetstream.WithMsgID(id), jetstream.WithExpectStream(b.queueStream(queue))); err != nil {
			return false, err
		}
		if err := ds.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, err
		}
		n++
		return true, nil
	})
	if err != nil {
		return n, fmt.Errorf("redrive %s: %w", queue, err)
	}
	return n, nil
}

// Queues lists the queues the server holds (of this bus's prefix).
func (b *Bus) Queues(ctx context.Context) ([]string, error) {
	prefix := b.cfg.Prefix + "Q_"
	names := b.js.StreamNames(ctx)
	var out []string
	for n := range names.Name() {
		if q, ok := strings.CutPrefix(n, prefix); ok {
			out = append(out, q)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return out, nil
}

// ResetConsumer deletes the queue's durable consumer, so that the next
// Consume delivers every message the queue holds at once, including those
// delivered before and never settled. Only for a queue nobody else
// consumes (an embedded server's, at start): a consumer running elsewhere
// would see its work delivered twice.
func (b *Bus) ResetConsumer(ctx context.Context, queue string) error {
	if err := checkQueue(queue); err != nil {
		return err
	}
	err := b.js.DeleteConsumer(ctx, b.queueStream(queue), b.consumerName(queue))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset consumer of %s: %w", queue, err)
	}
	return nil
}

// DeadLetterNew stores a message that never was on the queue (a broker
// trigger's, which failed its last attempt) as one of the queue's dead
// letters, with its ID and reason; Redrive moves it onto the queue like
// any other. A second call with the same ID within the dedup window
// stores nothing.
func (b *Bus) DeadLetterNew(ctx context.Context, queue, id string, data []byte, headers map[string]string, deliveries int, reason string) error {
	if err := checkQueue(queue); err != nil {
		return err
	}
	d := nats.NewMsg(b.deadSubject(queue))
	d.Data = data
	for k, v := range headers {
		d.Header.Set(k, v)
	}
	d.Header.Set(HeaderID, id)
	d.Header.Set(HeaderDeliveries, strconv.Itoa(deliveries))
	d.Header.Set(HeaderReason, reason)
	d.Header.Set(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	_, err := b.js.PublishMsg(ctx, d, jetstream.WithMsgID("dead-new-"+id), jetstream.WithExpectStream(b.deadStream(queue)))
	if err != nil {
		return fmt.Errorf("dead-letter %s/%s: %w", queue, id, err)
	}
	return nil
}
