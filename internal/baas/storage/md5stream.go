package storage

import (
	"crypto/md5"
	"hash"
)

// md5Stream hashes an upload for its ETag. The first asyncMD5After bytes
// are hashed inline (a small object costs no goroutine); past them, a
// goroutine of its own hashes copies of what is written, so that a large
// upload's MD5, its slowest pass (~500 MB/s here), runs beside its SHA-256
// check and its writing to disk instead of in turn with them.
type md5Stream struct {
	h       hash.Hash
	n       int64
	work    chan []byte // chunks to hash, in order
	free    chan []byte // buffers for more
	done    chan struct{}
	stopped bool
	sum     []byte
}

const (
	asyncMD5After = 1 << 20
	md5Buffers    = 4
	md5BufferSize = 256 << 10
)

func newMD5Stream() *md5Stream { return &md5Stream{h: md5.New()} }

// Write hashes p (or a copy of it, later).
func (m *md5Stream) Write(p []byte) {
	m.n += int64(len(p))
	if m.work == nil {
		if m.stopped || m.n <= asyncMD5After {
			m.h.Write(p)
			return
		}
		m.start()
	}
	for len(p) > 0 {
		buf := <-m.free
		k := copy(buf[:cap(buf)], p)
		m.work <- buf[:k]
		p = p[k:]
	}
}

func (m *md5Stream) start() {
	m.work = make(chan []byte, md5Buffers)
	m.free = make(chan []byte, md5Buffers)
	m.done = make(chan struct{})
	for range md5Buffers {
		m.free <- make([]byte, md5BufferSize)
	}
	go func() {
		defer close(m.done)
		for b := range m.work {
			m.h.Write(b)
			m.free <- b
		}
	}()
}

// Sum returns the MD5 of all that was written; nothing may be written
// after. It ends the goroutine.
func (m *md5Stream) Sum() []byte {
	if m.sum == nil {
		m.stop()
		m.sum = m.h.Sum(nil)
	}
	return m.sum
}

// stop ends the goroutine, if any, once it has hashed what was written;
// what is written after is hashed inline.
func (m *md5Stream) stop() {
	m.stopped = true
	if m.work != nil {
		close(m.work)
		<-m.done
		m.work = nil
	}
}
