package storage

import (
	"bytes"
	"crypto/md5"
	"runtime"
	"testing"
	"time"
)

// md5Stream hashes as crypto/md5 does, whatever the sizes of the writes
// on either side of the switch to its goroutine, and ends that goroutine.
func TestMD5Stream(t *testing.T) {
	data := make([]byte, 3*asyncMD5After+md5BufferSize/3)
	for i := range data {
		data[i] = byte(i*131 + i>>9)
	}
	goroutines := runtime.NumGoroutine()
	for _, tc := range []struct {
		name  string
		size  int // of the data
		write int // bytes per Write
	}{
		{"empty", 0, 1},
		{"small", 4096, 4096},
		{"at the threshold", asyncMD5After, 1000},
		{"one past", asyncMD5After + 1, 7},
		{"large, small writes", len(data), 32 << 10},
		{"large, odd writes", len(data), 12345},
		{"large, huge writes", len(data), 3*md5BufferSize + 17},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMD5Stream()
			for p := data[:tc.size]; len(p) > 0; {
				k := min(tc.write, len(p))
				buf := bytes.Clone(p[:k]) // the caller reuses its buffer
				m.Write(buf)
				clear(buf)
				p = p[k:]
			}
			want := md5.Sum(data[:tc.size])
			if got := m.Sum(); !bytes.Equal(got, want[:]) || !bytes.Equal(m.Sum(), want[:]) {
				t.Fatalf("Sum = %x, want %x", got, want)
			}
		})
	}
	t.Run("stopped early", func(t *testing.T) {
		m := newMD5Stream()
		m.Write(data)
		m.stop()
		m.stop()
	})
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines left, %d before", n, goroutines)
	}
}
