package process

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hostless/hostless/internal/function"
)

// Log lines longer than this are split.
const maxLogLine = 16 << 10

// pendingLogs keeps lines written between invocations (and during init)
// for the next invocation's record, bounded.
type pendingLogs struct {
	lines []pendingLine
	bytes int
}

type pendingLine struct {
	stream string
	line   []byte
}

const maxPendingBytes = 64 << 10

func (p *pendingLogs) Line(stream string, line []byte) {
	if p.bytes+len(line) > maxPendingBytes {
		return
	}
	p.bytes += len(line)
	p.lines = append(p.lines, pendingLine{stream, bytes.Clone(line)})
}

// logPipe reads one of the process's output pipes. Reads happen under mu,
// so that draining after a response sees every byte written before it.
type logPipe struct {
	i       *instance
	stream  string
	f       *os.File
	rc      syscall.RawConn
	mu      sync.Mutex
	buf     []byte
	partial []byte
	eof     bool
}

// readLogs starts a reader on each pipe.
func (i *instance) readLogs() {
	for _, p := range []struct {
		stream string
		f      *os.File
	}{{"stdout", i.slot.Stdout()}, {"stderr", i.slot.Stderr()}} {
		rc, err := p.f.SyscallConn()
		if err != nil {
			continue
		}
		lp := &logPipe{i: i, stream: p.stream, f: p.f, rc: rc, buf: make([]byte, 32<<10)}
		i.pipes = append(i.pipes, lp)
		go func() {
			_ = lp.rc.Read(lp.readAvailable)
		}()
	}
}

// readAvailable reads what the pipe holds now; it returns true at EOF.
func (p *logPipe) readAvailable(fd uintptr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eof {
		return true
	}
	for {
		n, err := unix.Read(int(fd), p.buf)
		if n > 0 {
			p.consume(p.buf[:n])
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return false
		}
		// EOF or a broken pipe: the process is gone.
		p.flush()
		p.eof = true
		return true
	}
}

// drain reads what was written before now.
func (p *logPipe) drain() {
	_ = p.rc.Control(func(fd uintptr) { p.readAvailable(fd) })
	p.mu.Lock()
	p.flush() // a last line without its newline belongs to this invocation
	p.mu.Unlock()
}

func (p *logPipe) consume(b []byte) {
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			p.partial = append(p.partial, b...)
			if len(p.partial) >= maxLogLine {
				p.flush()
			}
			return
		}
		if len(p.partial) > 0 {
			p.partial = append(p.partial, b[:nl]...)
			p.flush()
		} else {
			p.emit(b[:nl])
		}
		b = b[nl+1:]
	}
}

func (p *logPipe) flush() {
	if len(p.partial) == 0 {
		return
	}
	for len(p.partial) > maxLogLine {
		p.emit(p.partial[:maxLogLine])
		p.partial = p.partial[maxLogLine:]
	}
	p.emit(p.partial)
	p.partial = p.partial[:0]
}

func (p *logPipe) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	i := p.i
	i.logMu.Lock()
	if i.sink != nil {
		i.sink.Line(p.stream, line)
	} else {
		i.pending.Line(p.stream, line)
	}
	i.logMu.Unlock()
}

// attach sends output to an invocation's logs, starting with what was
// written since the last one.
func (i *instance) attach(logs function.Logs) {
	i.logMu.Lock()
	for _, l := range i.pending.lines {
		logs.Line(l.stream, l.line)
	}
	i.pending = pendingLogs{}
	i.sink = logs
	i.logMu.Unlock()
}

// detach drains what the process wrote before its answer into the
// invocation's logs, then sends output to the pending lines.
func (i *instance) detach() {
	for _, p := range i.pipes {
		p.drain()
	}
	i.logMu.Lock()
	i.sink = nil
	i.logMu.Unlock()
}
