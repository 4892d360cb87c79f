package docdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/store"
)

// Realtime limits.
const (
	// MaxSubscribers bounds the open subscriptions of one node.
	MaxSubscribers = 10_000
	// subBuffer is how many changes a subscriber may lag behind before it
	// is cut off (it reconnects with its last event ID and catches up from
	// the store).
	subBuffer = 1024
	// maxCatchUp bounds the changes a reconnecting subscriber replays.
	maxCatchUp = 100_000
	heartbeat  = 15 * time.Second
	// writeTimeout bounds one write to a subscriber.
	writeTimeout = 30 * time.Second
)

// feed reads the change log and fans changes out to this node's
// subscribers. It polls the store (other nodes' writes) and is woken by
// this node's writes.
type feed struct {
	s *Service

	mu   sync.Mutex
	subs map[*sub]struct{}
	last int64
	// live counts subscribers: without any, the feed reads nothing, and
	// the first one starts it from the newest change.
	live atomic.Int64

	wakeCh chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

type sub struct {
	coll, id string
	ch       chan store.Change
	// lagged is closed when the subscriber fell too far behind.
	lagged chan struct{}
}

func newFeed(s *Service) *feed {
	return &feed{s: s, subs: map[*sub]struct{}{}, wakeCh: make(chan struct{}, 1)}
}

func (f *feed) start(ctx context.Context) error {
	last, err := f.s.cfg.Store.LastChange(ctx, f.s.cfg.Project)
	if err != nil {
		return fmt.Errorf("start the change feed: %w", err)
	}
	f.last = last
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.run()
	return nil
}

func (f *feed) close() {
	if f.stop == nil {
		return
	}
	close(f.stop)
	<-f.done
	f.stop = nil
}

func (f *feed) wake() {
	if f.live.Load() == 0 {
		return
	}
	select {
	case f.wakeCh <- struct{}{}:
	default:
	}
}

func (f *feed) run() {
	defer close(f.done)
	poll := time.NewTicker(f.s.cfg.Poll)
	defer poll.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-f.wakeCh:
		case <-poll.C:
			if f.live.Load() == 0 {
				continue
			}
		case <-prune.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := f.s.cfg.Store.PruneChanges(ctx, time.Now().Add(-f.s.cfg.ChangeRetention)); err != nil {
				f.s.cfg.Log.Warn("prune the change log", "err", err)
			}
			cancel()
			continue
		}
		f.pump()
	}
}

// pump delivers every change after the last one delivered.
func (f *feed) pump() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cs, err := f.s.cfg.Store.ChangesSince(ctx, f.s.cfg.Project, f.last, 500)
		cancel()
		if err != nil {
			f.s.cfg.Log.Warn("read the change log", "err", err)
			return
		}
		if len(cs) == 0 {
			return
		}
		f.mu.Lock()
		for _, c := range cs {
			for s := range f.subs {
				if s.coll != c.Doc.Collection || (s.id != "" && s.id != c.Doc.ID) {
					continue
				}
				select {
				case s.ch <- c:
				default:
					close(s.lagged)
					delete(f.subs, s)
					f.live.Store(int64(len(f.subs)))
				}
			}
		}
		f.last = cs[len(cs)-1].Seq
		f.mu.Unlock()
		if len(cs) < 500 {
			return
		}
	}
}

func (f *feed) subscribe(coll, id string) (*sub, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) >= MaxSubscribers {
		e := apierror.New(http.StatusServiceUnavailable, "too_many_subscribers", "this node has %d open subscriptions, its maximum; retry later", MaxSubscribers)
		e.Header = http.Header{"Retry-After": {"5"}}
		return nil, e
	}
	if len(f.subs) == 0 {
		// Idle until now: start from the newest change, not from where
		// the last subscriber left.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		last, err := f.s.cfg.Store.LastChange(ctx, f.s.cfg.Project)
		cancel()
		if err != nil {
			return nil, err
		}
		f.last = last
	}
	s := &sub{coll: coll, id: id, ch: make(chan store.Change, subBuffer), lagged: make(chan struct{})}
	f.subs[s] = struct{}{}
	f.live.Store(int64(len(f.subs)))
	return s, nil
}

func (f *feed) unsubscribe(s *sub) {
	f.mu.Lock()
	delete(f.subs, s)
	f.live.Store(int64(len(f.subs)))
	f.mu.Unlock()
}

// Subscribe streams a collection's changes (or one document's, with id)
// that the caller may read as Server-Sent Events, from the change after
// lastEventID when it is > 0 (a reconnect), until ctx ends.
func (s *Service) Subscribe(ctx context.Context, w http.ResponseWriter, p auth.Principal, coll, id string, lastEventID int64) error {
	c, err := s.collection(ctx, coll)
	if err != nil {
		return err
	}
	op := "list"
	if id != "" {
		op = "get"
		if !idRE.MatchString(id) {
			return docNotFound(c, id)
		}
	}
	d, err := decide(p, c, op)
	if err != nil {
		return err
	}
	if _, ok := w.(http.Flusher); !ok {
		return errors.New("streaming unsupported by the response writer")
	}
	sb, err := s.feed.subscribe(coll, id)
	if err != nil {
		return err
	}
	defer s.feed.unsubscribe(sb)

	// Each write must go through within writeTimeout: a client that stops
	// reading is dropped instead of holding a goroutine for ever.
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString(": subscribed\nretry: 2000\n\n")
	if !write(buf.Bytes()) {
		return nil
	}

	sent := lastEventID
	send := func(ch store.Change) bool {
		if ch.Seq <= sent {
			return true
		}
		sent = ch.Seq
		if ch.Doc.Collection != coll || (id != "" && ch.Doc.ID != id) {
			return true
		}
		if !d.all {
			res, err := resource(ch.Doc)
			if err != nil || !s.allow(ctx, d, p, res, nil, op) {
				return true
			}
		}
		buf.Reset()
		buf.WriteString("id: ")
		buf.WriteString(strconv.FormatInt(ch.Seq, 10))
		buf.WriteString("\nevent: ")
		buf.WriteString(ch.Op)
		buf.WriteString("\ndata: ")
		render(&buf, ch.Doc)
		buf.WriteString("\n\n")
		return write(buf.Bytes())
	}
	if lastEventID > 0 {
		// Catch up from the store; the subscription above holds what
		// arrives meanwhile, and seq numbers drop what both deliver.
		replayed := 0
		for {
			cs, err := s.cfg.Store.ChangesSince(ctx, s.cfg.Project, sent, 500)
			if err != nil {
				return nil // the stream has begun: end it; the client reconnects
			}
			for _, ch := range cs {
				if !send(ch) {
					return nil
				}
			}
			replayed += len(cs)
			if len(cs) < 500 {
				break
			}
			if replayed >= maxCatchUp {
				write(fmt.Appendf(nil, "event: reset\ndata: {\"reason\":\"more than %d changes to replay: read the collection again\"}\n\n", maxCatchUp))
				return nil
			}
		}
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.feed.done:
			return nil
		case <-sb.lagged:
			return nil // the client reconnects with its last event ID and catches up
		case ch := <-sb.ch:
			if !send(ch) {
				return nil
			}
		case <-tick.C:
			if !write([]byte(": keep-alive\n\n")) {
				return nil
			}
		}
	}
}
