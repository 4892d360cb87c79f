package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	q := func(n int) *int { return &n }
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"nats", Config{Type: "nats", Subject: "orders.>", Name: "p/f/0"}, ""},
		{"jetstream", Config{Type: "jetstream", Stream: "ORDERS", Subject: "orders.*", Name: "p/f/0", AckWait: time.Minute}, ""},
		{"amqp", Config{Type: "amqp", URL: "amqp://u:p@h:5672/v", Queue: "q", Name: "n"}, ""},
		{"mqtt", Config{Type: "mqtt", URL: "tcp://h:1883", Topic: "a/+/b", QoS: q(0), Name: "n"}, ""},
		{"redis", Config{Type: "redis", URL: "redis://h:6379/0", Stream: "s", Group: "g", Name: "n", BatchSize: 1000, BatchWindow: 5 * time.Minute, Concurrency: 10, MaxAttempts: 100, Backoff: 5 * time.Minute}, ""},
		{"too many held", Config{Type: "nats", Subject: "a", Name: "n", BatchSize: 1000, Concurrency: 11}, "concurrency: batch_size x concurrency is 11000"},
		{"bad type", Config{Type: "kafka", Name: "n"}, "type: \"kafka\" is not one of"},
		{"no name", Config{Type: "nats", Subject: "a"}, "name: required"},
		{"nats no subject", Config{Type: "nats", Name: "n"}, "subject: required for type nats"},
		{"nats bad subject", Config{Type: "nats", Subject: "a..b", Name: "n"}, "subject: \"a..b\" is not a NATS subject"},
		{"nats bad wildcard", Config{Type: "nats", Subject: "a.>.b", Name: "n"}, "subject:"},
		{"jetstream no stream", Config{Type: "jetstream", Name: "n"}, "stream: required for type jetstream"},
		{"jetstream bad stream", Config{Type: "jetstream", Stream: "a.b", Name: "n"}, "stream: \"a.b\""},
		{"amqp no url", Config{Type: "amqp", Queue: "q", Name: "n"}, "url: required for type amqp"},
		{"amqp bad scheme", Config{Type: "amqp", URL: "http://h", Queue: "q", Name: "n"}, "url: scheme \"http\" is not one of amqp, amqps"},
		{"amqp no queue", Config{Type: "amqp", URL: "amqp://h", Name: "n"}, "queue: required for type amqp"},
		{"mqtt no topic", Config{Type: "mqtt", URL: "tcp://h:1883", Name: "n"}, "topic: required for type mqtt"},
		{"mqtt qos 3", Config{Type: "mqtt", URL: "tcp://h:1883", Topic: "t", QoS: q(3), Name: "n"}, "qos: 3 is not 0, 1 or 2"},
		{"redis no stream", Config{Type: "redis", URL: "redis://h", Name: "n"}, "stream: required for type redis"},
		{"topic on nats", Config{Type: "nats", Subject: "a", Topic: "t", Name: "n"}, "topic: not used by type nats"},
		{"group on amqp", Config{Type: "amqp", URL: "amqp://h", Queue: "q", Group: "g", Name: "n"}, "group: not used by type amqp"},
		{"ack_wait on redis", Config{Type: "redis", URL: "redis://h", Stream: "s", AckWait: time.Second, Name: "n"}, "ack_wait: not used by type redis"},
		{"batch too big", Config{Type: "nats", Subject: "a", Name: "n", BatchSize: 1001}, "batch_size: 1001 is above the maximum 1000"},
		{"negative batch", Config{Type: "nats", Subject: "a", Name: "n", BatchSize: -1}, "batch_size: must not be negative"},
		{"window too long", Config{Type: "nats", Subject: "a", Name: "n", BatchWindow: 6 * time.Minute}, "batch_window: 6m0s is above the maximum 5m0s"},
		{"concurrency", Config{Type: "nats", Subject: "a", Name: "n", Concurrency: 1001}, "concurrency: 1001 is above"},
		{"attempts", Config{Type: "nats", Subject: "a", Name: "n", MaxAttempts: 101}, "max_attempts: 101 is above"},
		{"backoff", Config{Type: "nats", Subject: "a", Name: "n", Backoff: time.Hour}, "backoff: 1h0m0s is above"},
		{"ack_wait short", Config{Type: "jetstream", Stream: "s", Name: "n", AckWait: time.Millisecond}, "ack_wait: 1ms is below the minimum 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Validate: got %v, want prefix %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	u := "amqp://user:s3cret@host:5672/vh"
	got := redact("dial "+u+": failed; password s3cret", u)
	if strings.Contains(got, "s3cret") {
		t.Errorf("redact left the password: %q", got)
	}
	if r := redactURL(u); strings.Contains(r, "s3cret") || !strings.Contains(r, "host:5672") {
		t.Errorf("redactURL = %q", r)
	}
}

func TestIdent(t *testing.T) {
	t.Parallel()
	a, b := ident("p/f/0", 64), ident("p_f_0", 64)
	if a == b {
		t.Errorf("ident maps distinct names to %q", a)
	}
	long := ident(strings.Repeat("x", 300)+".*> ", 64)
	if len(long) > 64 || strings.ContainsAny(long, ".*> /") {
		t.Errorf("ident = %q", long)
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for n := range 30 {
		if d := jitter(time.Second, MaxBackoff, n, true); d < 0 || d > MaxBackoff {
			t.Fatalf("jitter(%d) = %s", n, d)
		}
		if d := jitter(time.Second, maxReconnectWait, n, false); d < time.Second/2 || d > maxReconnectWait {
			t.Fatalf("reconnect jitter(%d) = %s", n, d)
		}
	}
}

// uniq returns a name no other test run uses, for streams, queues, keys and topics on shared
// servers.
func uniq(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "hlt" + hex.EncodeToString(b[:])
}

// recorder is a Handler and DeadLetter that records what it gets.
type recorder struct {
	mu    sync.Mutex
	calls [][]Message
	dead  []deadLetter
	// fail decides the result of call n (from 0).
	fail func(n int, batch []Message) ([]int, error)
	// block, if set, makes the first call wait for it to close (after closing started).
	block   chan struct{}
	started chan struct{}
}

type deadLetter struct {
	m      Message
	reason string
}

func (r *recorder) handle(ctx context.Context, batch []Message) ([]int, error) {
	r.mu.Lock()
	n := len(r.calls)
	r.calls = append(r.calls, slices.Clone(batch))
	fail := r.fail
	r.mu.Unlock()
	if n == 0 && r.block != nil {
		close(r.started)
		<-r.block
	}
	if fail != nil {
		return fail(n, batch)
	}
	return nil, nil
}

func (r *recorder) deadLetter(ctx context.Context, m Message, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = append(r.dead, deadLetter{m, reason})
	return nil
}

// attempts returns the attempts with which the message with data was handed on.
func (r *recorder) attempts(data string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []int
	for _, c := range r.calls {
		for _, m := range c {
			if string(m.Data) == data {
				as = append(as, m.Attempt)
			}
		}
	}
	return as
}

func (r *recorder) snapshot() [][]Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += len(c)
	}
	return n
}

func (r *recorder) batches() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, c := range r.calls {
		var b []string
		for _, m := range c {
			b = append(b, string(m.Data))
		}
		out = append(out, b)
	}
	return out
}

func (r *recorder) deadLetters() []deadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.dead)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start starts a trigger with r, stopping it when the test ends.
func start(t testing.TB, cfg Config, r *recorder, opt Options) *Trigger {
	t.Helper()
	if opt.Log == nil {
		opt.Log = quietLog()
	}
	opt.DeadLetter = r.deadLetter
	if opt.ReconnectWait == 0 {
		opt.ReconnectWait = 100 * time.Millisecond
	}
	tr, err := Start(context.Background(), cfg, r.handle, opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Stop(ctx)
	})
	return tr
}

func stop(t testing.TB, tr *Trigger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func waitConnected(t testing.TB, tr *Trigger) {
	t.Helper()
	waitFor(t, 30*time.Second, "the trigger to connect", func() bool { return tr.Status().Connected })
}

// backend is one broker under test.
type backend struct {
	// config returns a Config of fresh names (and cleans up what they name at the broker).
	config func(t *testing.T) Config
	opt    Options
	// publish puts messages where cfg reads them, in order.
	publish func(t *testing.T, cfg Config, bodies ...string)
	// durable: the broker redelivers what the trigger did not acknowledge.
	durable bool
	// settled, if set, fails the test if the broker still holds messages for cfg's trigger.
	settled func(t *testing.T, cfg Config)
	// lateNaks: the broker may deliver a message Nak'ed at a Stop once more, late (NATS < 2.10).
	lateNaks bool
}

// runSuite proves the trigger's semantics against one broker.
func runSuite(t *testing.T, be backend) {
	t.Run("batches", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		cfg.BatchSize, cfg.BatchWindow = 5, 2*time.Second
		r := &recorder{}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		var bodies []string
		for i := range 10 {
			bodies = append(bodies, fmt.Sprintf("m%d", i))
		}
		be.publish(t, cfg, bodies...)
		waitFor(t, 15*time.Second, "10 messages", func() bool { return r.count() >= 10 })
		got := r.batches()
		want := [][]string{bodies[:5], bodies[5:]}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("batches = %v, want %v", got, want)
		}
		for _, c := range r.snapshot() {
			for _, m := range c {
				if m.Source != cfg.Type || m.ID == "" || m.Attempt != 1 || m.Time.IsZero() || m.Subject == "" {
					t.Errorf("message = %+v", m)
				}
			}
		}
		waitFor(t, 5*time.Second, "10 successes", func() bool { return tr.Status().Succeeded == 10 })
		stop(t, tr)
		if be.settled != nil {
			be.settled(t, cfg)
		}
	})

	t.Run("retry then dead letter", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		cfg.BatchSize, cfg.BatchWindow = 3, time.Second
		cfg.MaxAttempts, cfg.Backoff = 3, 10*time.Millisecond
		r := &recorder{fail: func(_ int, batch []Message) ([]int, error) {
			var failed []int
			for i, m := range batch {
				if string(m.Data) == "bad" {
					failed = append(failed, i)
				}
			}
			return failed, nil
		}}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		be.publish(t, cfg, "ok1", "bad", "ok2")
		waitFor(t, 15*time.Second, "a dead letter", func() bool { return len(r.deadLetters()) == 1 })
		if got := r.attempts("bad"); fmt.Sprint(got) != "[1 2 3]" {
			t.Errorf("attempts of the failing message = %v, want [1 2 3]", got)
		}
		if got := r.attempts("ok1"); fmt.Sprint(got) != "[1]" {
			t.Errorf("attempts of a good message = %v, want [1]", got)
		}
		dl := r.deadLetters()[0]
		if string(dl.m.Data) != "bad" || dl.m.Attempt != 3 || !strings.Contains(dl.reason, "failed") {
			t.Errorf("dead letter = %q attempt %d reason %q", dl.m.Data, dl.m.Attempt, dl.reason)
		}
		waitFor(t, 5*time.Second, "the status to count", func() bool {
			s := tr.Status()
			return s.Succeeded == 2 && s.Failed == 3 && s.DeadLettered == 1
		})
		stop(t, tr)
		if be.settled != nil {
			be.settled(t, cfg)
		}

		// A new trigger under the same name sees the next message, not the dead-lettered one.
		r2 := &recorder{}
		tr2 := start(t, cfg, r2, be.opt)
		waitConnected(t, tr2)
		be.publish(t, cfg, "after")
		waitFor(t, 15*time.Second, "the next message", func() bool { return len(r2.attempts("after")) > 0 })
		time.Sleep(200 * time.Millisecond)
		if got := r2.attempts("bad"); len(got) > 0 {
			t.Errorf("the dead-lettered message came back: attempts %v", got)
		}
		stop(t, tr2)
	})

	t.Run("partial failure retries only the failed", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		cfg.BatchSize, cfg.BatchWindow = 4, 2*time.Second
		cfg.Backoff = 10 * time.Millisecond
		r := &recorder{fail: func(n int, batch []Message) ([]int, error) {
			if n == 0 {
				return []int{1, 3}, nil
			}
			return nil, nil
		}}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		be.publish(t, cfg, "a", "b", "c", "d")
		waitFor(t, 15*time.Second, "4 successes", func() bool { return tr.Status().Succeeded == 4 })
		if got, want := fmt.Sprint(r.batches()), "[[a b c d] [b d]]"; got != want {
			t.Errorf("batches = %s, want %s", got, want)
		}
		if got := r.attempts("d"); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("attempts of d = %v", got)
		}
		if s := tr.Status(); s.Failed != 2 || s.DeadLettered != 0 {
			t.Errorf("status = %+v", s)
		}
		stop(t, tr)
	})

	t.Run("a whole-batch error retries the batch", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		cfg.BatchSize, cfg.BatchWindow = 2, 2*time.Second
		cfg.Backoff = 10 * time.Millisecond
		r := &recorder{fail: func(n int, batch []Message) ([]int, error) {
			if n == 0 {
				return nil, errors.New("function crashed")
			}
			if n == 1 {
				panic("handler bug")
			}
			return nil, nil
		}}
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		be.publish(t, cfg, "x", "y")
		waitFor(t, 15*time.Second, "2 successes", func() bool { return tr.Status().Succeeded == 2 })
		if got, want := fmt.Sprint(r.batches()), "[[x y] [x y] [x y]]"; got != want {
			t.Errorf("batches = %s, want %s", got, want)
		}
		stop(t, tr)
	})

	if !be.durable {
		return
	}
	t.Run("redelivered after a stop mid-handler", func(t *testing.T) {
		t.Parallel()
		cfg := be.config(t)
		r := &recorder{block: make(chan struct{}), started: make(chan struct{})}
		t.Cleanup(func() { close(r.block) })
		tr := start(t, cfg, r, be.opt)
		waitConnected(t, tr)
		be.publish(t, cfg, "crash")
		select {
		case <-r.started:
		case <-time.After(15 * time.Second):
			t.Fatal("the handler was not called")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := tr.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop with a blocked handler = %v, want a deadline error", err)
		}

		r2 := &recorder{}
		tr2 := start(t, cfg, r2, be.opt)
		waitFor(t, 15*time.Second, "the redelivery", func() bool { return len(r2.attempts("crash")) > 0 })
		// Attempt counts the delivery the stopped trigger abandoned. (NATS 2.9 may count one more:
		// it can deliver the Nak'ed message to the stopped trigger's expired pull request first.)
		if got := r2.attempts("crash"); got[0] < 2 {
			t.Errorf("attempt of the redelivered message = %v, want 2 or more", got)
		}
		// At least once: a broker may deliver it twice (NATS 2.9.10 does here).
		waitFor(t, 5*time.Second, "its success", func() bool { return tr2.Status().Succeeded >= 1 })
		stop(t, tr2)
		if be.settled != nil && !be.lateNaks {
			be.settled(t, cfg)
		}
	})
}

// proxy forwards TCP connections to a server; down closes them all, as a network failure would.
type proxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// newProxy reserves a port for a proxy to target, not listening yet.
func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String()}
	ln.Close()
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln {
				// Went down while this connection was being made: down closed
				// the others, so this one must not outlive it either.
				p.mu.Unlock()
				c.Close()
				s.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// viaProxy returns rawURL with its host replaced by the proxy's.
func viaProxy(t *testing.T, rawURL, addr string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// testReconnect proves a trigger through a proxy to the real server: down at start (an error, not a
// failure), connecting when the network comes, reconnecting after it breaks, and delivering.
func testReconnect(t *testing.T, be backend, host string) {
	// Generous waits: under the race detector, on two busy cores, a broker
	// client's own retries and timeouts take seconds.
	const wait = 30 * time.Second
	cfg := be.config(t)
	p := newProxy(t, host)
	cfg.URL = viaProxy(t, cfg.URL, p.addr)
	r := &recorder{}
	tr := start(t, cfg, r, be.opt)
	waitFor(t, wait, "a connection error", func() bool {
		s := tr.Status()
		return !s.Connected && s.LastError != ""
	})
	p.up(t)
	waitConnected(t, tr)
	deliver(t, be, cfg, r, "one", wait)
	if n := len(r.attempts("one")); be.durable && n != 1 {
		t.Errorf(`"one" delivered %d times, want once`, n)
	}

	p.down()
	waitFor(t, wait, "the trigger to see the break", func() bool { return !tr.Status().Connected })
	p.up(t)
	waitFor(t, wait, "the reconnection", func() bool {
		s := tr.Status()
		return s.Connected && s.Reconnects >= 2
	})
	deliver(t, be, cfg, r, "two", wait)
	stop(t, tr)
}

// deliver publishes body and waits for the trigger to get it. Core NATS is
// at most once: a message published before the server has the trigger's
// subscription is lost, so there it publishes again until one arrives.
func deliver(t *testing.T, be backend, cfg Config, r *recorder, body string, wait time.Duration) {
	t.Helper()
	be.publish(t, cfg, body)
	deadline := time.Now().Add(wait)
	for len(r.attempts(body)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %q", wait, body)
		}
		time.Sleep(200 * time.Millisecond)
		if !be.durable {
			be.publish(t, cfg, body)
		}
	}
}
