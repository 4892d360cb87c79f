package trigger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttInflight bounds the messages an MQTT session can hold: a QoS 1 or 2 message keeps its
// 16-bit packet identifier until acknowledged, so a broker can't have more in flight.
const mqttInflight = 1 << 16

// mqttBroker is a persistent MQTT session subscribed to the topic, acknowledging manually. It
// reconnects itself (paho's auto-reconnect is off) so that each session's messages are acknowledged
// on the session that received them.
type mqttBroker struct {
	t *Trigger

	mu      sync.Mutex
	client  mqtt.Client
	lost    chan error
	pending chan mqtt.Message
}

var _ broker = (*mqttBroker)(nil)

func (b *mqttBroker) connect(ctx context.Context) error {
	cfg := b.t.cfg
	u := cfg.URL
	// paho knows tcp, ssl, ws and wss; mqtt:// and mqtts:// are the names people write.
	if rest, ok := strings.CutPrefix(u, "mqtt://"); ok {
		u = "tcp://" + rest
	} else if rest, ok := strings.CutPrefix(u, "mqtts://"); ok {
		u = "ssl://" + rest
	}
	lost := make(chan error, 1)
	// paho calls the handler on one goroutine, in order; it must not block (paho would stop reading
	// the connection, pings included), so it queues. QoS 0 messages are dropped when the queue is
	// full: they are at most once anyway.
	pending := make(chan mqtt.Message, mqttInflight)
	onMessage := func(_ mqtt.Client, m mqtt.Message) {
		select {
		case pending <- m:
		default:
			if m.Qos() > 0 {
				pending <- m
			}
		}
	}
	opts := mqtt.NewClientOptions().
		AddBroker(u).
		SetClientID(ident(cfg.Name, 64)).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(15 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		// A persistent session delivers its queued messages right after CONNACK, before the
		// subscription is renewed: the default handler takes them.
		SetDefaultPublishHandler(onMessage).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	client := mqtt.NewClient(opts)
	b.mu.Lock()
	b.client, b.lost, b.pending = client, lost, pending
	b.mu.Unlock()
	if err := wait(ctx, client.Connect()); err != nil {
		return fmt.Errorf("mqtt connect: %w", err)
	}
	tok := client.Subscribe(cfg.Topic, byte(*cfg.QoS), onMessage)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqtt subscribe %q: %w", cfg.Topic, err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for _, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("mqtt subscribe %q: refused by the broker", cfg.Topic)
			}
		}
	}
	return nil
}

// wait waits for tok, or ctx, or 15 seconds.
func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(15 * time.Second):
		return errors.New("timed out")
	}
}

func (b *mqttBroker) receive(ctx context.Context, deliver func(*delivery) bool) error {
	b.mu.Lock()
	lost, pending := b.lost, b.pending
	b.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			// Not unsubscribing: the session keeps the subscription, and queues for the next start.
			return nil
		case err := <-lost:
			return fmt.Errorf("mqtt connection lost: %w", err)
		case m := <-pending:
			d := &delivery{
				msg: Message{
					Subject: m.Topic(),
					Data:    m.Payload(),
					Time:    time.Now(),
					Attempt: 1,
				},
				ack: func(context.Context) error { m.Ack(); return nil },
			}
			if m.Duplicate() {
				d.msg.Attempt = 2
			}
			deliver(d)
		}
	}
}

// disconnect ends the session's connection; the broker keeps the session, with the messages not
// acknowledged, for the next connect.
func (b *mqttBroker) disconnect() {
	b.mu.Lock()
	client := b.client
	b.client = nil
	b.mu.Unlock()
	if client != nil && client.IsConnectionOpen() {
		client.Disconnect(250)
	}
}

func (b *mqttBroker) health(*Status) {}
