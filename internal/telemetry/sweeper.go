package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// Defaults of SweepConfig.
const (
	DefaultSweepEvery   = time.Minute
	DefaultSweepTimeout = 5 * time.Minute
)

// SweepConfig says what telemetry a Sweeper keeps.
type SweepConfig struct {
	// MaxAge deletes the records and log lines older than it; 0 or less
	// deletes none by age.
	MaxAge time.Duration
	// MaxLogBytes deletes the oldest log lines past this many bytes (see
	// store.Retention); 0 or less sets no cap.
	MaxLogBytes int64
	// Every is how often it sweeps (default DefaultSweepEvery).
	Every time.Duration
}

// Sweeper deletes old telemetry in the background: at start, then every
// SweepConfig.Every. In a cluster every node sweeps; a row is deleted once.
type Sweeper struct {
	cfg     SweepConfig
	st      store.Invocations
	log     *slog.Logger
	quit    chan struct{}
	done    chan struct{}
	stop    sync.Once
	started atomic.Bool

	logBytes                     atomic.Int64 // as of the last sweep
	trimmedRecords, trimmedLines atomic.Int64
}

// NewSweeper allocates a sweeper; Start begins sweeping.
func NewSweeper(st store.Invocations, log *slog.Logger, cfg SweepConfig) *Sweeper {
	if cfg.Every <= 0 {
		cfg.Every = DefaultSweepEvery
	}
	return &Sweeper{cfg: cfg, st: st, log: log, quit: make(chan struct{}), done: make(chan struct{})}
}

// Start runs the sweeps.
func (s *Sweeper) Start() {
	s.started.Store(true)
	go s.run()
}

func (s *Sweeper) run() {
	defer close(s.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultSweepTimeout)
		go func() { // a long pass stops at Close
			select {
			case <-s.quit:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("trim telemetry", "err", err)
		}
		cancel()
		t.Reset(s.cfg.Every)
	}
}

// Sweep runs one pass now.
func (s *Sweeper) Sweep(ctx context.Context) (store.Trimmed, error) {
	r := store.Retention{MaxLogBytes: s.cfg.MaxLogBytes}
	if s.cfg.MaxAge > 0 {
		r.Before = time.Now().Add(-s.cfg.MaxAge)
	}
	var t store.Trimmed
	var err error
	if !r.Before.IsZero() || r.MaxLogBytes > 0 {
		t, err = s.st.TrimTelemetry(ctx, r)
		s.trimmedRecords.Add(t.Records)
		s.trimmedLines.Add(t.LogLines)
		if t != (store.Trimmed{}) {
			s.log.Info("trimmed telemetry", "records", t.Records, "log_lines", t.LogLines, "log_bytes", t.LogBytes,
				"max_age", s.cfg.MaxAge.String(), "max_log_bytes", s.cfg.MaxLogBytes)
		}
		if err != nil {
			return t, err
		}
	}
	n, err := s.st.LogBytes(ctx)
	if err != nil {
		return t, err
	}
	s.logBytes.Store(n)
	return t, nil
}

// LogBytes is the size of the stored log lines as of the last sweep.
func (s *Sweeper) LogBytes() int64 { return s.logBytes.Load() }

// Trimmed counts the records and log lines deleted since start.
func (s *Sweeper) Trimmed() (records, lines int64) {
	return s.trimmedRecords.Load(), s.trimmedLines.Load()
}

// Close stops sweeping, cutting a pass short, and waits for it; it works
// after a Start or without one.
func (s *Sweeper) Close(ctx context.Context) error {
	s.stop.Do(func() { close(s.quit) })
	if !s.started.Load() {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
