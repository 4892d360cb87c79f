package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend opens a Bus for a test: prefix is unique to the test, and cleanup deletes what it made.
type backend struct {
	name string
	open func(t *testing.T) *Bus
}

// backends are the embedded server always, and the server at HOSTLESS_TEST_NATS when it is set.
func backends(t *testing.T) []backend {
	bs := []backend{{name: "embedded", open: func(t *testing.T) *Bus {
		return openBus(t, Config{Dir: t.TempDir(), Prefix: uniquePrefix(t)})
	}}}
	if url := os.Getenv("HOSTLESS_TEST_NATS"); url != "" {
		bs = append(bs, backend{name: "external", open: func(t *testing.T) *Bus {
			return openBus(t, Config{URL: url, Prefix: uniquePrefix(t)})
		}})
	}
	return bs
}

func uniquePrefix(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:]) + "_"
}

func openBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		deleteStreams(t, b)
		b.Close()
	})
	return b
}

// deleteStreams deletes every stream of b's prefix (on a shared server, a test leaves nothing).
func deleteStreams(t *testing.T, b *Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := b.js.StreamNames(ctx)
	var mine []string
	for n := range names.Name() {
		if strings.HasPrefix(n, b.cfg.Prefix) || strings.HasPrefix(n, "KV_"+b.cfg.Prefix) {
			mine = append(mine, n)
		}
	}
	for _, n := range mine {
		if err := b.js.DeleteStream(ctx, n); err != nil {
			t.Errorf("delete stream %s: %v", n, err)
		}
	}
}

// run runs f against every backend.
func run(t *testing.T, f func(t *testing.T, b *Bus)) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f(t, be.open(t))
		})
	}
}

// consume runs Consume in the background until the test ends.
func consume(t *testing.T, b *Bus, queue string, cfg ConsumerConfig, h func(context.Context, *Message)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, queue, cfg, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
}

func ensure(t *testing.T, b *Bus, q string) {
	t.Helper()
	if err := b.EnsureQueue(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureQueue(context.Background(), q); err != nil {
		t.Fatalf("EnsureQueue twice: %v", err)
	}
}

func publish(t *testing.T, b *Bus, q, id, data string, h map[string]string) {
	t.Helper()
	if err := b.Publish(context.Background(), q, id, []byte(data), h); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublishConsume(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "id-1", "hello", map[string]string{"Function": "resize"})
		got := make(chan *Message, 1)
		consume(t, b, "inv", ConsumerConfig{}, func(ctx context.Context, m *Message) {
			if err := m.Ack(); err != nil {
				t.Error(err)
			}
			got <- m
		})
		select {
		case m := <-got:
			if string(m.Data) != "hello" || m.ID != "id-1" || m.Headers["Function"] != "resize" || m.NumDelivered != 1 {
				t.Fatalf("got %q id %q headers %v delivered %d", m.Data, m.ID, m.Headers, m.NumDelivered)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
		// Acknowledged: gone from the work queue.
		s, _ := b.js.Stream(context.Background(), b.queueStream("inv"))
		waitFor(t, "empty queue", 5*time.Second, func() bool {
			info, err := s.Info(context.Background())
			return err == nil && info.State.Msgs == 0
		})
	})
}

func TestDedupe(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		for range 3 {
			publish(t, b, "inv", "same", "x", nil)
		}
		publish(t, b, "inv", "other", "y", nil)
		s, _ := b.js.Stream(context.Background(), b.queueStream("inv"))
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 2 {
			t.Fatalf("stored %d messages, want 2", info.State.Msgs)
		}
		if info.Config.Duplicates != DefaultDedupWindow {
			t.Fatalf("dedup window %s", info.Config.Duplicates)
		}
	})
}

func TestRedeliveryAfterNak(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "n", "x", nil)
		var mu sync.Mutex
		var deliveries []int
		var times []time.Time
		consume(t, b, "inv", ConsumerConfig{MaxDeliver: 5, Backoff: []time.Duration{300 * time.Millisecond}}, func(ctx context.Context, m *Message) {
			mu.Lock()
			deliveries = append(deliveries, m.NumDelivered)
			times = append(times, time.Now())
			mu.Unlock()
			if m.NumDelivered < 3 {
				_ = m.Nak(0) // the consumer's Backoff
				return
			}
			_ = m.Ack()
		})
		waitFor(t, "3 deliveries", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(deliveries) == 3 })
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(deliveries) != "[1 2 3]" {
			t.Fatalf("deliveries %v", deliveries)
		}
		if gap := times[1].Sub(times[0]); gap < 250*time.Millisecond {
			t.Fatalf("redelivered after %s, want the 300ms backoff", gap)
		}
	})
}

func TestRedeliveryAfterAckWait(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "w", "x", nil)
		var n atomic.Int32
		release := make(chan struct{})
		consume(t, b, "inv", ConsumerConfig{MaxAckPending: 2, AckWait: 500 * time.Millisecond}, func(ctx context.Context, m *Message) {
			if n.Add(1) == 1 {
				<-release // hangs past AckWait, as a stuck function would
				return
			}
			_ = m.Ack()
		})
		waitFor(t, "redelivery after AckWait", 10*time.Second, func() bool { return n.Load() == 2 })
		close(release)
	})
}

func TestInProgressExtends(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "p", "x", nil)
		var n atomic.Int32
		acked := make(chan struct{})
		consume(t, b, "inv", ConsumerConfig{MaxAckPending: 2, AckWait: 600 * time.Millisecond}, func(ctx context.Context, m *Message) {
			n.Add(1)
			for range 8 { // 1.6 s, well past AckWait
				time.Sleep(200 * time.Millisecond)
				if err := m.InProgress(); err != nil {
					t.Error(err)
				}
			}
			if err := m.Ack(); err != nil {
				t.Error(err)
			}
			close(acked)
		})
		select {
		case <-acked:
		case <-time.After(10 * time.Second):
			t.Fatal("not acked")
		}
		time.Sleep(900 * time.Millisecond)
		if got := n.Load(); got != 1 {
			t.Fatalf("handled %d times, want 1", got)
		}
	})
}

func TestDeadLetterAndRedrive(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ctx := context.Background()
		ensure(t, b, "inv")
		publish(t, b, "inv", "poison", "bad", map[string]string{"Function": "resize"})
		publish(t, b, "inv", "fine", "good", nil)
		var fail atomic.Bool
		fail.Store(true)
		var mu sync.Mutex
		handled := map[string]int{}
		consume(t, b, "inv", ConsumerConfig{MaxDeliver: 3}, func(ctx context.Context, m *Message) {
			mu.Lock()
			handled[m.ID]++
			mu.Unlock()
			if m.ID == "poison" && fail.Load() {
				return // fails without settling: a Nak
			}
			_ = m.Ack()
		})
		var dl []DeadLetter
		waitFor(t, "a dead letter", 10*time.Second, func() bool {
			var err error
			dl, err = b.DeadLetters(ctx, "inv", 10)
			return err == nil && len(dl) == 1
		})
		d := dl[0]
		if d.ID != "poison" || string(d.Data) != "bad" || d.Headers["Function"] != "resize" || d.Deliveries != 3 || d.Reason == "" || d.FailedAt.IsZero() {
			t.Fatalf("dead letter %+v", d)
		}
		waitFor(t, "the other message handled", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return handled["fine"] == 1 })
		mu.Lock()
		if handled["poison"] != 3 || handled["fine"] != 1 {
			t.Fatalf("handled %v", handled)
		}
		mu.Unlock()
		s, _ := b.js.Stream(ctx, b.queueStream("inv"))
		waitFor(t, "queue empty", 5*time.Second, func() bool {
			info, err := s.Info(ctx)
			return err == nil && info.State.Msgs == 0
		})

		fail.Store(false)
		n, err := b.Redrive(ctx, "inv")
		if err != nil || n != 1 {
			t.Fatalf("Redrive: %d, %v", n, err)
		}
		waitFor(t, "redriven message handled", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return handled["poison"] == 4 })
		if dl, err := b.DeadLetters(ctx, "inv", 10); err != nil || len(dl) != 0 {
			t.Fatalf("after redrive: %v, %v", dl, err)
		}
	})
}

func TestTermDeadLetters(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "t", "x", nil)
		consume(t, b, "inv", ConsumerConfig{}, func(ctx context.Context, m *Message) { _ = m.Term("no such function") })
		waitFor(t, "a dead letter", 10*time.Second, func() bool {
			dl, err := b.DeadLetters(context.Background(), "inv", 0)
			return err == nil && len(dl) == 1 && dl[0].Deliveries == 1 && strings.Contains(dl[0].Reason, "no such function")
		})
	})
}

// TestDeadLetterAfterAckWait: the last delivery times out (no handler settles it); the server's
// max-deliveries advisory dead-letters it.
func TestDeadLetterAfterAckWait(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "slow", "x", nil)
		release := make(chan struct{})
		defer close(release)
		consume(t, b, "inv", ConsumerConfig{MaxAckPending: 3, MaxDeliver: 2, AckWait: 300 * time.Millisecond}, func(ctx context.Context, m *Message) {
			<-release
		})
		waitFor(t, "a dead letter", 15*time.Second, func() bool {
			dl, err := b.DeadLetters(context.Background(), "inv", 0)
			return err == nil && len(dl) == 1 && dl[0].ID == "slow"
		})
	})
}

func TestConcurrencyBounded(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		for i := range 30 {
			publish(t, b, "inv", fmt.Sprint(i), "x", nil)
		}
		var cur, peak, done atomic.Int32
		consume(t, b, "inv", ConsumerConfig{MaxAckPending: 4}, func(ctx context.Context, m *Message) {
			c := cur.Add(1)
			for {
				p := peak.Load()
				if c <= p || peak.CompareAndSwap(p, c) {
					break
				}
			}
			time.Sleep(30 * time.Millisecond)
			cur.Add(-1)
			_ = m.Ack()
			done.Add(1)
		})
		waitFor(t, "30 handled", 20*time.Second, func() bool { return done.Load() == 30 })
		if p := peak.Load(); p != 4 {
			t.Fatalf("peak concurrency %d, want 4", p)
		}
	})
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Prefix: uniquePrefix(t)}
	ctx := context.Background()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureQueue(ctx, "inv"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := b.Publish(ctx, "inv", fmt.Sprint(i), []byte(fmt.Sprint("m", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	b = openBus(t, cfg)
	if err := b.EnsureQueue(ctx, "inv"); err != nil {
		t.Fatal(err)
	}
	// Still deduplicated after the restart.
	if err := b.Publish(ctx, "inv", "0", []byte("again"), nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	consume(t, b, "inv", ConsumerConfig{}, func(ctx context.Context, m *Message) {
		mu.Lock()
		got = append(got, string(m.Data))
		mu.Unlock()
		_ = m.Ack()
	})
	waitFor(t, "5 messages", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 5 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[m0 m1 m2 m3 m4]" {
		t.Fatalf("got %v", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"embedded", Config{Dir: "/x"}, true},
		{"external", Config{URL: "nats://127.0.0.1:4222"}, true},
		{"no dir", Config{}, false},
		{"bad prefix", Config{Dir: "/x", Prefix: "a.b"}, false},
		{"negative dedup", Config{Dir: "/x", DedupWindow: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	if err := checkQueue("a.b"); err == nil {
		t.Fatal("queue name with a dot accepted")
	}
}

// BenchmarkPublish measures acknowledged publishes per second from 16 concurrent publishers on
// the embedded server, with and without SyncAlways.
func BenchmarkPublish(b *testing.B) {
	for _, syncAlways := range []bool{false, true} {
		b.Run(fmt.Sprintf("SyncAlways=%v", syncAlways), func(b *testing.B) {
			ctx := context.Background()
			bus, err := Open(ctx, Config{Dir: b.TempDir(), SyncAlways: syncAlways})
			if err != nil {
				b.Fatal(err)
			}
			defer bus.Close()
			if err := bus.EnsureQueue(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 256)
			var seq atomic.Int64
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 publishers
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprint("m", seq.Add(1))
					if err := bus.Publish(ctx, "bench", id, data, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// TestConsumeStopWaitsForHandlers: Consume returns after ctx is done only once running handlers
// have returned, and what they acknowledged stays acknowledged.
func TestConsumeStopWaitsForHandlers(t *testing.T) {
	run(t, func(t *testing.T, b *Bus) {
		ensure(t, b, "inv")
		publish(t, b, "inv", "s", "x", nil)
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		var finished atomic.Bool
		done := make(chan error, 1)
		go func() {
			done <- b.Consume(ctx, "inv", ConsumerConfig{}, func(hctx context.Context, m *Message) {
				close(started)
				<-hctx.Done()
				time.Sleep(200 * time.Millisecond)
				if err := m.Ack(); err != nil {
					t.Error(err)
				}
				finished.Store(true)
			})
		}()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("not delivered")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !finished.Load() {
			t.Fatal("Consume returned before its handler")
		}
		s, _ := b.js.Stream(context.Background(), b.queueStream("inv"))
		if info, err := s.Info(context.Background()); err != nil || info.State.Msgs != 0 {
			t.Fatalf("queue after stop: %+v, %v", info, err)
		}
	})
}

func TestClaims(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) { testClaims(t, be.open(t)) })
	}
}

func testClaims(t *testing.T, b *Bus) {
	c, err := b.Claims("claims", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, first, err := c.Claim(t.Context(), "order-17 key", "inv-1")
	if err != nil || !first || v != "inv-1" {
		t.Fatalf("first claim: %q %v %v", v, first, err)
	}
	v, first, err = c.Claim(t.Context(), "order-17 key", "inv-2")
	if err != nil || first || v != "inv-1" {
		t.Fatalf("second claim: %q %v %v, want inv-1 from the first", v, first, err)
	}
	if _, err := b.Claims("bad name", time.Minute); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
}

func TestQueueFull(t *testing.T) {
	b := openBus(t, Config{Dir: t.TempDir(), Prefix: uniquePrefix(t), QueueMaxMsgs: 2})
	if err := b.EnsureQueue(t.Context(), "q"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := b.Publish(t.Context(), "q", fmt.Sprint("m", i), []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(t.Context(), "q", "m2", []byte("x"), nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third publish: %v, want ErrQueueFull", err)
	}
}
