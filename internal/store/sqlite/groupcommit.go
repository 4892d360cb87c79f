package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// write runs fn in a transaction of data.db's writer and returns once that
// transaction is committed (or fn failed). Concurrent calls commit
// together (group commit): each call runs under a savepoint of one shared
// transaction, so one call's failure rolls back its writes alone, and one
// commit (one fsync with DataSyncFull) acknowledges them all. fn reports
// whether a failure left writes behind; clean says fn fails clean (before
// writing, or undoing what it wrote) but for a broken database, so it
// needs no savepoint, and a dirty failure of it fails the whole group.
//
// fn runs on the goroutine of another caller or in the background, with a
// context of its own (see commitWrites). Its caller's context is checked
// before fn starts.
func (db *DB) write(ctx context.Context, clean bool, fn func(ctx context.Context, tx cachedTx) (dirty bool, err error)) error {
	req := &queuedWrite{ctx: ctx, clean: clean, fn: fn, done: make(chan struct{})}
	db.writeq.mu.Lock()
	if db.writeq.closed {
		db.writeq.mu.Unlock()
		return errors.New("the store is closed")
	}
	db.writeq.pending = append(db.writeq.pending, req)
	lead := !db.writeq.active
	db.writeq.active = true
	if lead {
		// Counted before Close can wait: Close sets closed under mu first.
		db.writeq.wg.Add(1)
	}
	db.writeq.mu.Unlock()
	if lead {
		db.leadWrites()
	}
	<-req.done
	return req.err
}

// queuedWrite is one call of write waiting for its group's commit.
type queuedWrite struct {
	ctx   context.Context
	clean bool
	fn    func(ctx context.Context, tx cachedTx) (dirty bool, err error)
	err   error
	done  chan struct{}
}

// writeQueue holds the calls of write waiting for a commit; the caller
// that finds no commit running leads, committing groups until the queue is
// empty.
type writeQueue struct {
	mu      sync.Mutex
	pending []*queuedWrite
	active  bool
	closed  bool           // Close was called: no more writes
	wg      sync.WaitGroup // the lead, on its caller's goroutine or in the background
}

// maxGroup bounds the calls one transaction commits.
const maxGroup = 256

// leadWrites commits one group, then hands the rest of the queue to a
// goroutine, so that the leader's own caller gets its answer at once.
func (db *DB) leadWrites() {
	if !db.commitGroup() {
		db.writeq.wg.Done()
		return
	}
	go func() {
		defer db.writeq.wg.Done()
		for db.commitGroup() {
		}
	}()
}

// commitGroup commits the calls pending now (up to maxGroup) and reports
// whether more are waiting; when none are, it ends the lead.
func (db *DB) commitGroup() bool {
	q := &db.writeq
	q.mu.Lock()
	n := min(len(q.pending), maxGroup)
	group := q.pending[:n:n]
	q.pending = q.pending[n:]
	if len(q.pending) == 0 {
		q.pending = nil
	}
	q.mu.Unlock()
	if n > 0 {
		err := db.commitWrites(group)
		for _, r := range group {
			if err != nil && r.err == nil {
				r.err = err
			}
			close(r.done)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		q.active = false
		return false
	}
	return true
}

// commitWrites runs a group in one transaction, each call under its own
// savepoint unless it fails clean. Statements run on a context that is
// never done, not a caller's: one caller going away must not abort the
// others' transaction, and a context that can end costs two goroutines per
// statement (database/sql's and the driver's, which watch it), more than
// a write of one row costs. A statement on data.db's one writer waits for
// no other, so nothing here needs a deadline.
func (db *DB) commitWrites(group []*queuedWrite) error {
	bg := context.Background()
	db.prepareStmts(bg)
	tx, err := db.dataW.BeginTx(bg, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ctx := cachedTx{tx, db}
	if len(group) == 1 {
		// Alone: the transaction is the call's; no savepoint needed.
		r := group[0]
		if r.err = r.ctx.Err(); r.err != nil {
			return nil
		}
		if _, r.err = r.fn(bg, ctx); r.err != nil {
			return nil // rolled back
		}
		return tx.Commit()
	}
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if r.clean {
			var dirty bool
			if dirty, r.err = r.fn(bg, ctx); r.err != nil && dirty {
				return r.err // the whole group fails: tx is rolled back
			}
			continue
		}
		if _, err := ctx.exec(bg, `SAVEPOINT w`); err != nil {
			return err
		}
		if _, r.err = r.fn(bg, ctx); r.err != nil {
			if _, err := ctx.exec(bg, `ROLLBACK TO w`); err != nil {
				return err
			}
		}
		if _, err := ctx.exec(bg, `RELEASE w`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// cachedTx runs statements of a transaction through statements prepared
// once on the writer connection: parsing SQL cost more than running it.
type cachedTx struct {
	tx *sql.Tx
	db *DB
}

func (t cachedTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.db.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t cachedTx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.db.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// stmt returns query prepared on the data writer, or nil when it isn't
// yet: the writer's one connection is the transaction's, so it can't
// prepare now; prepareStmts does before the next transaction.
func (db *DB) stmt(query string) *sql.Stmt {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	st, ok := db.stmts[query]
	if !ok {
		if db.stmts == nil {
			db.stmts = map[string]*sql.Stmt{}
		}
		db.stmts[query] = nil // wanted
	}
	return st
}

// prepareStmts prepares the statements transactions wanted.
func (db *DB) prepareStmts(ctx context.Context) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	for q, st := range db.stmts {
		if st != nil {
			continue
		}
		if st, err := db.dataW.PrepareContext(ctx, q); err == nil {
			db.stmts[q] = st
		}
	}
}

// readStmt returns query prepared on data.db's reader pool (each
// connection prepares it once, when it first runs it), or nil if it
// doesn't prepare: the caller then runs the query unprepared, and gets its
// error.
func (db *DB) readStmt(ctx context.Context, query string) *sql.Stmt {
	db.stmtMu.Lock()
	st := db.readStmts[query]
	closed := db.writeq.isClosed()
	db.stmtMu.Unlock()
	if st != nil || closed {
		return st
	}
	st, err := db.dataR.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if had := db.readStmts[query]; had != nil || db.writeq.isClosed() {
		_ = st.Close()
		return had
	}
	if db.readStmts == nil {
		db.readStmts = map[string]*sql.Stmt{}
	}
	db.readStmts[query] = st
	return st
}

func (q *writeQueue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// pointRead runs a read of one row by its primary key (a few
// microseconds) through a statement prepared on data.db's reader pool. It
// checks ctx once: watching ctx during the read would cost two goroutines
// (database/sql's and the driver's), more than the read.
func (db *DB) pointRead(ctx context.Context, query string, args ...any) *sql.Row {
	if err := ctx.Err(); err != nil {
		return db.dataR.QueryRowContext(ctx, query, args...) // fails with err
	}
	ctx = context.WithoutCancel(ctx)
	if st := db.readStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.dataR.QueryRowContext(ctx, query, args...)
}
