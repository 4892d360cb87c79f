package trigger

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// hostOf returns the host:port of rawURL, with the broker's default port.
func hostOf(t *testing.T, rawURL, port string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":" + port
	}
	return u.Host
}

func amqpBackend(t *testing.T, rawURL string) backend {
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Fatalf("amqp: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return backend{
		config: func(t *testing.T) Config {
			q := uniq(t)
			t.Cleanup(func() {
				if ch, err := conn.Channel(); err == nil {
					_, _ = ch.QueueDelete(q, false, false, false)
					ch.Close()
				}
			})
			return Config{Type: TypeAMQP, URL: rawURL, Queue: q, Name: "test/" + q}
		},
		publish: func(t *testing.T, cfg Config, bodies ...string) {
			// The trigger declares the queue; a publish before that would be dropped.
			if _, err := ch.QueueDeclare(cfg.Queue, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, b := range bodies {
				err := ch.PublishWithContext(ctx, "", cfg.Queue, false, false, amqp.Publishing{
					Body: []byte(b), DeliveryMode: amqp.Persistent, ContentType: "text/plain",
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		},
		durable: true,
		settled: func(t *testing.T, cfg Config) {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			q, err := ch.QueueDeclarePassive(cfg.Queue, true, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.Messages != 0 {
				t.Errorf("queue %s holds %d messages", cfg.Queue, q.Messages)
			}
		},
	}
}

func TestAMQP(t *testing.T) {
	u := os.Getenv("HOSTLESS_TEST_AMQP")
	if u == "" {
		t.Skip("HOSTLESS_TEST_AMQP is not set")
	}
	t.Parallel()
	be := amqpBackend(t, u)
	runSuite(t, be)
	t.Run("reconnect", func(t *testing.T) {
		t.Parallel()
		testReconnect(t, be, hostOf(t, u, "5672"))
	})
}

func mqttBackend(t *testing.T, rawURL string) backend {
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(rawURL).SetClientID(uniq(t)))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(100) })
	return backend{
		config: func(t *testing.T) Config {
			name := uniq(t)
			cfg := Config{Type: TypeMQTT, URL: rawURL, Topic: "hostless-test/" + name + "/#", Name: "test/" + name}
			t.Cleanup(func() {
				// A clean session under the trigger's client ID ends its persistent session.
				c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(rawURL).SetClientID(ident(cfg.Name, 64)).SetCleanSession(true))
				if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
					c.Disconnect(100)
				}
			})
			return cfg
		},
		publish: func(t *testing.T, cfg Config, bodies ...string) {
			topic := cfg.Topic[:len(cfg.Topic)-1] + "in"
			for _, b := range bodies {
				tok := pub.Publish(topic, 1, false, b)
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatalf("mqtt publish: %v", tok.Error())
				}
			}
		},
		durable: true,
	}
}

func TestMQTT(t *testing.T) {
	u := os.Getenv("HOSTLESS_TEST_MQTT")
	if u == "" {
		t.Skip("HOSTLESS_TEST_MQTT is not set")
	}
	t.Parallel()
	be := mqttBackend(t, u)
	runSuite(t, be)
	t.Run("reconnect", func(t *testing.T) {
		t.Parallel()
		testReconnect(t, be, hostOf(t, u, "1883"))
	})
	t.Run("messages published while stopped", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		r := &recorder{}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		stop(t, tr)
		be.publish(t, cfg, "while-away")
		r2 := &recorder{}
		start(t, cfg, r2, be.opt)
		waitFor(t, 10*time.Second, "the message published while stopped", func() bool { return len(r2.attempts("while-away")) == 1 })
	})
}

func redisBackend(t *testing.T, rawURL string) backend {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })
	return backend{
		config: func(t *testing.T) Config {
			key := uniq(t)
			t.Cleanup(func() { rc.Del(context.Background(), key) })
			return Config{Type: TypeRedis, URL: rawURL, Stream: key, Name: "test/" + key}
		},
		publish: func(t *testing.T, cfg Config, bodies ...string) {
			for _, b := range bodies {
				err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: cfg.Stream, Values: []string{"data", b, "kind", "test"}}).Err()
				if err != nil {
					t.Fatal(err)
				}
			}
		},
		durable: true,
		settled: func(t *testing.T, cfg Config) {
			p, err := rc.XPending(context.Background(), cfg.Stream, ident(cfg.Name, 64)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if p.Count != 0 {
				t.Errorf("group holds %d pending entries", p.Count)
			}
		},
	}
}

func TestRedis(t *testing.T) {
	u := os.Getenv("HOSTLESS_TEST_REDIS")
	if u == "" {
		t.Skip("HOSTLESS_TEST_REDIS is not set")
	}
	t.Parallel()
	be := redisBackend(t, u)
	runSuite(t, be)
	t.Run("reconnect", func(t *testing.T) {
		t.Parallel()
		testReconnect(t, be, hostOf(t, u, "6379"))
	})
	t.Run("fields", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		r := &recorder{}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		be.publish(t, cfg, "payload")
		waitFor(t, 10*time.Second, "the message", func() bool { return r.count() == 1 })
		m := r.snapshot()[0][0]
		if string(m.Data) != "payload" || m.Headers["kind"] != "test" || len(m.Headers) != 1 {
			t.Errorf("message = %+v", m)
		}
	})
}
