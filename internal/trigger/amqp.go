package trigger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpBroker is a consumer on an AMQP 0.9.1 queue, with manual acks. Messages held when the channel
// closes are requeued by the broker.
type amqpBroker struct {
	t *Trigger

	mu         sync.Mutex
	conn       *amqp.Connection
	ch         *amqp.Channel
	tag        string
	deliveries <-chan amqp.Delivery
	closed     chan *amqp.Error
}

var _ broker = (*amqpBroker)(nil)

func (b *amqpBroker) connect(ctx context.Context) error {
	cfg := b.t.cfg
	conn, err := amqp.DialConfig(cfg.URL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp.DefaultDial(10 * time.Second),
		Properties: amqp.Table{"connection_name": "hostless trigger " + cfg.Name},
	})
	if err != nil {
		return fmt.Errorf("amqp dial %s: %w", redactURL(cfg.URL), err)
	}
	b.mu.Lock()
	b.conn = conn
	b.mu.Unlock()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := b.channel(conn)
	if err != nil {
		return err
	}
	// A passive declare leaves a queue declared with other arguments (a quorum queue, a TTL) alone;
	// only a missing queue is declared, durable.
	if _, err := ch.QueueDeclarePassive(cfg.Queue, true, false, false, false, nil); err != nil {
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			return fmt.Errorf("amqp queue %q: %w", cfg.Queue, err)
		}
		// The failed passive declare closed the channel.
		if ch, err = b.channel(conn); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("amqp declare queue %q: %w", cfg.Queue, err)
		}
	}
	tag := ident(cfg.Name, 200) + "-" + b.t.idpf[:8]
	deliveries, err := ch.Consume(cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("amqp consume %q: %w", cfg.Queue, err)
	}
	b.mu.Lock()
	b.tag, b.deliveries, b.closed = tag, deliveries, closed
	b.mu.Unlock()
	return nil
}

// channel opens a channel with the prefetch of the trigger.
func (b *amqpBroker) channel(conn *amqp.Connection) (*amqp.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("amqp channel: %w", err)
	}
	b.mu.Lock()
	b.ch = ch
	b.mu.Unlock()
	if err := ch.Qos(b.t.cfg.BatchSize*b.t.cfg.Concurrency, 0, false); err != nil {
		return nil, fmt.Errorf("amqp qos: %w", err)
	}
	return ch, nil
}

func (b *amqpBroker) receive(ctx context.Context, deliver func(*delivery) bool) error {
	b.mu.Lock()
	ch, tag, deliveries, closed := b.ch, b.tag, b.deliveries, b.closed
	b.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			// Stop the flow; what was prefetched but not handed on is requeued when the channel
			// closes.
			_ = ch.Cancel(tag, false)
			return nil
		case e := <-closed:
			return fmt.Errorf("amqp connection closed: %v", e)
		case m, ok := <-deliveries:
			if !ok {
				return errors.New("amqp channel closed")
			}
			deliver(b.delivery(m))
		}
	}
}

func (b *amqpBroker) delivery(m amqp.Delivery) *delivery {
	d := &delivery{
		msg: Message{
			ID:      m.MessageId,
			Subject: m.RoutingKey,
			Data:    m.Body,
			Time:    m.Timestamp,
			Attempt: 1,
		},
		ack: func(context.Context) error { return m.Ack(false) },
	}
	if d.msg.Subject == "" {
		d.msg.Subject = b.t.cfg.Queue
	}
	if d.msg.Time.IsZero() {
		d.msg.Time = time.Now()
	}
	if m.Redelivered {
		d.msg.Attempt = 2
	}
	if len(m.Headers) > 0 || m.ContentType != "" || m.CorrelationId != "" {
		d.msg.Headers = make(map[string]string, len(m.Headers)+2)
		for k, v := range m.Headers {
			d.msg.Headers[k] = fmt.Sprint(v)
		}
		if m.ContentType != "" {
			d.msg.Headers["content-type"] = m.ContentType
		}
		if m.CorrelationId != "" {
			d.msg.Headers["correlation-id"] = m.CorrelationId
		}
	}
	// Quorum queues count deliveries.
	if n, err := strconv.Atoi(fmt.Sprint(m.Headers["x-delivery-count"])); err == nil && n >= 0 {
		d.msg.Attempt = n + 1
	}
	return d
}

// disconnect closes the channel and the connection; the broker requeues what was not acked.
func (b *amqpBroker) disconnect() {
	b.mu.Lock()
	ch, conn := b.ch, b.conn
	b.ch, b.conn, b.deliveries, b.closed = nil, nil, nil, nil
	b.mu.Unlock()
	if ch != nil {
		_ = ch.Close()
	}
	if conn != nil {
		_ = conn.Close()
	}
}

func (b *amqpBroker) health(*Status) {}
