package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisBroker is a consumer in a consumer group of a Redis stream. Entries stay in the consumer's
// pending entries list until XACK; each (re)connect reads that list first.
type redisBroker struct {
	t *Trigger

	mu       sync.Mutex
	rc       *redis.Client
	consumer string
	// held are the IDs of entries in the trigger's hands, so that re-reading the pending list after a
	// reconnect does not hand them on twice.
	held map[string]bool
}

var _ broker = (*redisBroker)(nil)

func (b *redisBroker) connect(ctx context.Context) error {
	cfg := b.t.cfg
	b.mu.Lock()
	if b.rc == nil {
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			b.mu.Unlock()
			return fmt.Errorf("redis url: %s", redact(err.Error(), cfg.URL))
		}
		opt.ClientName = "hostless-trigger"
		opt.MaxRetries = 1
		opt.DialTimeout = 5 * time.Second
		opt.PoolSize = 4
		b.rc = redis.NewClient(opt)
		host := b.t.opt.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		b.consumer = ident(cfg.Name, 100) + "@" + host
		b.held = make(map[string]bool)
	}
	rc := b.rc
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := rc.XGroupCreateMkStream(ctx, cfg.Stream, cfg.Group, "$").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis create group %q on %q: %w", cfg.Group, cfg.Stream, err)
	}
	return nil
}

func (b *redisBroker) receive(ctx context.Context, deliver func(*delivery) bool) error {
	cfg := b.t.cfg
	b.mu.Lock()
	rc, consumer := b.rc, b.consumer
	b.mu.Unlock()

	// First the entries delivered to this consumer before (a crash, a lost connection), then new
	// ones.
	for start := "0"; ; {
		streams, err := rc.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: cfg.Group, Consumer: consumer, Streams: []string{cfg.Stream, start}, Count: int64(cfg.BatchSize),
		}).Result()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("redis read pending of %q: %w", cfg.Stream, err)
		}
		if len(streams) == 0 || len(streams[0].Messages) == 0 {
			break
		}
		msgs := streams[0].Messages
		counts := map[string]int64{}
		pend, err := rc.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: cfg.Stream, Group: cfg.Group, Start: msgs[0].ID, End: msgs[len(msgs)-1].ID,
			Count: int64(len(msgs)), Consumer: consumer,
		}).Result()
		if err == nil {
			for _, p := range pend {
				counts[p.ID] = p.RetryCount
			}
		}
		for _, m := range msgs {
			if b.isHeld(m.ID) {
				continue
			}
			if m.Values == nil {
				// Deleted from the stream (XDEL, trimming) while pending: nothing to hand on.
				_ = rc.XAck(ctx, cfg.Stream, cfg.Group, m.ID).Err()
				continue
			}
			if !deliver(b.delivery(m, int(counts[m.ID]))) {
				return nil
			}
		}
		start = msgs[len(msgs)-1].ID
	}

	for ctx.Err() == nil {
		streams, err := rc.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: cfg.Group, Consumer: consumer, Streams: []string{cfg.Stream, ">"},
			Count: int64(cfg.BatchSize), Block: time.Second,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("redis read %q: %w", cfg.Stream, err)
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				if !deliver(b.delivery(m, 1)) {
					return nil
				}
			}
		}
	}
	return nil
}

func (b *redisBroker) isHeld(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held[id]
}

func (b *redisBroker) delivery(m redis.XMessage, attempt int) *delivery {
	cfg := b.t.cfg
	d := &delivery{
		msg: Message{
			ID:      m.ID,
			Subject: cfg.Stream,
			Attempt: max(1, attempt),
			Time:    time.Now(),
		},
		ack: func(ctx context.Context) error {
			b.mu.Lock()
			rc := b.rc
			b.mu.Unlock()
			if rc == nil {
				return errors.New("redis: closed")
			}
			return rc.XAck(ctx, cfg.Stream, cfg.Group, m.ID).Err()
		},
		forget: func() {
			b.mu.Lock()
			delete(b.held, m.ID)
			b.mu.Unlock()
		},
	}
	// The ID is the time the entry was added, in milliseconds, and a sequence.
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			d.msg.Time = time.UnixMilli(n)
		}
	}
	headers := make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		headers[k] = fmt.Sprint(v)
	}
	if data, ok := headers["data"]; ok {
		d.msg.Data = []byte(data)
		delete(headers, "data")
	} else {
		d.msg.Data, _ = json.Marshal(headers)
	}
	if len(headers) > 0 {
		d.msg.Headers = headers
	}
	b.mu.Lock()
	b.held[m.ID] = true
	b.mu.Unlock()
	return d
}

// disconnect keeps the client across failures (go-redis redials; entries held are acknowledged
// over it) and closes it at Stop.
func (b *redisBroker) disconnect() {
	if b.t.recv.Err() == nil {
		return
	}
	b.mu.Lock()
	rc := b.rc
	b.rc = nil
	b.mu.Unlock()
	if rc != nil {
		_ = rc.Close()
	}
}

func (b *redisBroker) health(*Status) {}
