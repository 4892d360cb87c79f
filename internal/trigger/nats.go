package trigger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsBroker is a core NATS subscription. Its connection reconnects on its own (nats.go keeps
// subscriptions across reconnects), so health reads the connection's state.
type natsBroker struct {
	t *Trigger

	mu   sync.Mutex
	nc   *nats.Conn
	own  bool   // the trigger made nc (else it is Options.NATS, never closed here)
	base uint64 // nc's reconnect count when the trigger started using it
	sub  *nats.Subscription
}

var _ broker = (*natsBroker)(nil)

// conn returns the NATS connection, dialling it the first time. A connection of its own retries
// a server that is down, in the background.
func (b *natsBroker) conn() (*nats.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nc != nil {
		return b.nc, nil
	}
	if b.t.cfg.URL == "" {
		b.nc = b.t.opt.NATS
		b.base = b.nc.Stats().Reconnects
		return b.nc, nil
	}
	nc, err := nats.Connect(b.t.cfg.URL,
		nats.Name("hostless trigger "+b.t.cfg.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.t.noteLastError(err)
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	b.nc, b.own = nc, true
	return nc, nil
}

// connect subscribes, and makes sure the server has the subscription
// before the trigger says it is connected: core NATS keeps nothing for a
// subscriber that is not there yet.
func (b *natsBroker) connect(ctx context.Context) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	cfg := b.t.cfg
	sub, err := nc.QueueSubscribe(cfg.Subject, cfg.Queue, func(m *nats.Msg) {
		d := &delivery{msg: Message{
			Subject: m.Subject,
			Data:    m.Data,
			Headers: natsHeaders(m.Header),
			Time:    time.Now(),
		}, ack: func(context.Context) error { return nil }}
		if d.msg.Headers != nil {
			d.msg.ID = d.msg.Headers[nats.MsgIdHdr]
		}
		b.t.deliver(d)
	})
	if err != nil {
		return fmt.Errorf("nats subscribe %q: %w", cfg.Subject, err)
	}
	if nc.IsConnected() {
		_ = nc.FlushTimeout(5 * time.Second)
	}
	b.mu.Lock()
	b.sub = sub
	b.mu.Unlock()
	return nil
}

func (b *natsBroker) receive(ctx context.Context, _ func(*delivery) bool) error {
	b.mu.Lock()
	nc, sub := b.nc, b.sub
	b.mu.Unlock()
	defer func() {
		_ = sub.Unsubscribe()
		b.mu.Lock()
		b.sub = nil
		b.mu.Unlock()
	}()
	return waitClosed(ctx, nc)
}

// waitClosed waits until ctx is done (nil) or nc is closed for good (an error).
func waitClosed(ctx context.Context, nc *nats.Conn) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if nc.IsClosed() {
				return errors.New("nats: connection closed")
			}
		}
	}
}

// disconnect keeps the connection across session failures (messages held are acknowledged over it)
// and, at Stop, flushes it and closes it if it is the trigger's own.
func (b *natsBroker) disconnect() {
	if b.t.recv.Err() == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nc == nil {
		return
	}
	_ = b.nc.FlushTimeout(2 * time.Second)
	if b.own {
		b.nc.Close()
		b.nc = nil
	}
}

func (b *natsBroker) health(s *Status) {
	b.mu.Lock()
	nc, base := b.nc, b.base
	b.mu.Unlock()
	if nc == nil {
		return
	}
	if !nc.IsConnected() {
		s.Connected = false
		if s.LastError == "" {
			if err := nc.LastError(); err != nil {
				s.LastError = redact(err.Error(), b.t.cfg.URL)
			} else {
				s.LastError = "nats: " + nc.Status().String()
			}
		}
	}
	s.Reconnects += int(nc.Stats().Reconnects - base)
}

func natsHeaders(h nats.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	return m
}

// jetStreamBroker is a durable pull consumer.
type jetStreamBroker struct {
	natsBroker
	cmu  sync.Mutex
	cons jetstream.Consumer
}

var _ broker = (*jetStreamBroker)(nil)

func (b *jetStreamBroker) connect(ctx context.Context) error {
	nc, err := b.conn()
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cfg := b.t.cfg
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       ident(cfg.Name, 64),
		Description:   "hostless trigger " + cfg.Name,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.BatchSize * cfg.Concurrency,
		FilterSubject: cfg.Subject,
	})
	if err != nil {
		return fmt.Errorf("jetstream consumer on stream %q: %w", cfg.Stream, err)
	}
	b.cmu.Lock()
	b.cons = cons
	b.cmu.Unlock()
	return nil
}

func (b *jetStreamBroker) receive(ctx context.Context, deliver func(*delivery) bool) error {
	b.cmu.Lock()
	cons := b.cons
	b.cmu.Unlock()
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(b.t.cfg.BatchSize, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("jetstream fetch: %w", err)
		}
		for m := range batch.Messages() {
			deliver(jetStreamDelivery(m))
		}
		err = batch.Error()
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("jetstream fetch: %w", err)
		}
	}
	return nil
}

func jetStreamDelivery(m jetstream.Msg) *delivery {
	d := &delivery{
		msg: Message{
			Subject: m.Subject(),
			Data:    m.Data(),
			Headers: natsHeaders(m.Headers()),
			Time:    time.Now(),
			Attempt: 1,
		},
		ack:     m.DoubleAck,
		release: func() { _ = m.Nak() },
		touch:   func() { _ = m.InProgress() },
	}
	if md, err := m.Metadata(); err == nil {
		d.msg.ID = fmt.Sprintf("%s:%d", md.Stream, md.Sequence.Stream)
		d.msg.Time = md.Timestamp
		d.msg.Attempt = max(1, int(md.NumDelivered))
	}
	return d
}
