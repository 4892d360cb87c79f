// Package logchunk is the stored form of one invocation's log lines, shared
// by the SQL stores. They keep an invocation's lines in one row, a chunk,
// rather than a row per line: a row costs microseconds to insert whatever
// its size, and a function writing ten lines a call must not pay for ten.
//
// A chunk is two strings. Its text is the lines joined by newlines, so a
// substring of a line is a substring of the text and a store can search
// chunks in SQL (instr, strpos) before splitting them. Its meta has an
// entry per line, comma-separated: the stream ("o" stdout, "e" stderr, "p"
// platform, else the name in parentheses, with %, comma and ")" escaped as
// %25, %2C and %29), the line's time in nanoseconds from the chunk's base
// time, a slash and the line's length in bytes. Lengths, not newlines, cut
// the text, so a line may hold a newline. "e0/5,e1520/0" is the line
// "hello" at the base time, then an empty line 1.52 µs later.
//
// A line's sequence number (its cursor) is its chunk's times 1<<Shift plus
// its index in the chunk.
//
// Package logchunk must never import a database driver.
package logchunk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/function"
)

// Shift is how far a chunk's sequence number is shifted in its lines'.
const Shift = 16

// MaxLines is the most lines one chunk holds; a store splits a longer
// record into several chunks. The index past it, Whole, stands in cursors
// for "every line of the chunk".
const (
	MaxLines = 1<<Shift - 1
	Whole    = MaxLines
)

// Seq is the sequence number of line i of chunk.
func Seq(chunk int64, i int) int64 { return chunk<<Shift | int64(i) }

// Split is the chunk and the index of a line's sequence number.
func Split(seq int64) (chunk int64, i int) { return seq >> Shift, int(seq & (1<<Shift - 1)) }

// Chunk is the stored form of some lines.
type Chunk struct {
	Base int64 // Unix nanoseconds the lines' times count from: the first line's
	Last int64 // Unix nanoseconds of the latest line
	Meta string
	Text string
}

// Bytes is what the chunk counts towards a store's cap on log bytes.
func (c Chunk) Bytes() int64 { return int64(len(c.Meta) + len(c.Text)) }

// Encode makes the chunk of lines (at most MaxLines of them). Only their
// times, streams and text are kept.
func Encode(lines []function.LogLine) Chunk {
	if len(lines) == 0 {
		return Chunk{}
	}
	c := Chunk{Base: lines[0].Time.UnixNano()}
	c.Last = c.Base
	size := 0
	for _, l := range lines {
		size += len(l.Line) + 1
	}
	var text strings.Builder
	text.Grow(size)
	meta := make([]byte, 0, len(lines)*12)
	for i, l := range lines {
		t := l.Time.UnixNano()
		c.Last = max(c.Last, t)
		if i > 0 {
			text.WriteByte('\n')
			meta = append(meta, ',')
		}
		text.WriteString(l.Line)
		meta = appendStream(meta, l.Stream)
		meta = strconv.AppendInt(meta, t-c.Base, 10)
		meta = append(meta, '/')
		meta = strconv.AppendInt(meta, int64(len(l.Line)), 10)
	}
	c.Meta, c.Text = string(meta), text.String()
	return c
}

func appendStream(b []byte, stream string) []byte {
	switch stream {
	case "stdout":
		return append(b, 'o')
	case "stderr":
		return append(b, 'e')
	case "platform":
		return append(b, 'p')
	}
	b = append(b, '(')
	for i := range len(stream) {
		switch c := stream[i]; c {
		case '%', ',', ')':
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, ')')
}

// ErrCorrupt is returned for a chunk that doesn't decode.
var ErrCorrupt = errors.New("corrupt log chunk")

// Decode returns the lines of a chunk stored with base, meta and text, in
// order, with their times, streams and text.
func Decode(base int64, meta, text string) ([]function.LogLine, error) {
	if meta == "" {
		if text != "" {
			return nil, fmt.Errorf("%w: text without lines", ErrCorrupt)
		}
		return nil, nil
	}
	lines := make([]function.LogLine, 0, strings.Count(meta, ",")+1)
	pos := 0
	for entry := range strings.SplitSeq(meta, ",") {
		stream, rest, err := cutStream(entry)
		if err != nil {
			return nil, err
		}
		d, n, ok := strings.Cut(rest, "/")
		delta, err1 := strconv.ParseInt(d, 10, 64)
		size, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || size < 0 {
			return nil, fmt.Errorf("%w: entry %q", ErrCorrupt, entry)
		}
		if len(lines) > 0 {
			pos++ // the newline before this line
		}
		if pos+size > len(text) {
			return nil, fmt.Errorf("%w: line %d runs past the text", ErrCorrupt, len(lines))
		}
		lines = append(lines, function.LogLine{
			Time: unixNano(base + delta), Stream: stream, Line: text[pos : pos+size],
		})
		pos += size
	}
	if pos != len(text) {
		return nil, fmt.Errorf("%w: %d bytes of text past the last line", ErrCorrupt, len(text)-pos)
	}
	return lines, nil
}

func cutStream(entry string) (stream, rest string, err error) {
	if entry == "" {
		return "", "", fmt.Errorf("%w: empty entry", ErrCorrupt)
	}
	switch entry[0] {
	case 'o':
		return "stdout", entry[1:], nil
	case 'e':
		return "stderr", entry[1:], nil
	case 'p':
		return "platform", entry[1:], nil
	case '(':
		name, rest, ok := strings.Cut(entry[1:], ")")
		if !ok {
			return "", "", fmt.Errorf("%w: entry %q", ErrCorrupt, entry)
		}
		if !strings.Contains(name, "%") {
			return name, rest, nil
		}
		var b strings.Builder
		for i := 0; i < len(name); i++ {
			if name[i] != '%' {
				b.WriteByte(name[i])
				continue
			}
			if i+2 >= len(name) {
				return "", "", fmt.Errorf("%w: stream %q", ErrCorrupt, name)
			}
			c, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
			if err != nil {
				return "", "", fmt.Errorf("%w: stream %q", ErrCorrupt, name)
			}
			b.WriteByte(byte(c))
			i += 2
		}
		return b.String(), rest, nil
	}
	return "", "", fmt.Errorf("%w: entry %q", ErrCorrupt, entry)
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
