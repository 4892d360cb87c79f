package logchunk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store/logchunk"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []function.LogLine
		meta  string
	}{
		{name: "none"},
		{
			name:  "one",
			lines: []function.LogLine{{Time: base, Stream: "stderr", Line: "hello"}},
			meta:  "e0/5",
		},
		{
			name: "streams, empty lines, newlines and unicode",
			lines: []function.LogLine{
				{Time: base, Stream: "stdout", Line: ""},
				{Time: base.Add(1520), Stream: "stderr", Line: "two\nlines"},
				{Time: base.Add(-time.Microsecond), Stream: "platform", Line: "unicode ✓ and\ttabs"},
				{Time: base.Add(time.Hour), Stream: "odd,name)%", Line: ""},
			},
			meta: "o0/0,e1520/9,p-1000/20,(odd%2Cname%29%25)3600000000000/0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := logchunk.Encode(tt.lines)
			if c.Meta != tt.meta {
				t.Errorf("meta = %q, want %q", c.Meta, tt.meta)
			}
			if want := int64(len(c.Meta) + len(c.Text)); c.Bytes() != want {
				t.Errorf("Bytes() = %d, want %d", c.Bytes(), want)
			}
			got, err := logchunk.Decode(c.Base, c.Meta, c.Text)
			if err != nil {
				t.Fatal(err)
			}
			same(t, got, tt.lines)
			if len(tt.lines) > 0 {
				last := tt.lines[0].Time
				for _, l := range tt.lines {
					if l.Time.After(last) {
						last = l.Time
					}
				}
				if c.Last != last.UnixNano() || c.Base != tt.lines[0].Time.UnixNano() {
					t.Errorf("base %d last %d, want %d %d", c.Base, c.Last, tt.lines[0].Time.UnixNano(), last.UnixNano())
				}
			}
		})
	}
}

func same(t *testing.T, got, want []function.LogLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Line != w.Line || g.Stream != w.Stream || !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Fatalf("line %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestSeq(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		chunk int64
		i     int
	}{{1, 0}, {1, 7}, {123456789, logchunk.MaxLines - 1}, {5, logchunk.Whole}} {
		s := logchunk.Seq(tc.chunk, tc.i)
		if c, i := logchunk.Split(s); c != tc.chunk || i != tc.i {
			t.Errorf("Split(Seq(%d, %d)) = %d, %d", tc.chunk, tc.i, c, i)
		}
		if s <= logchunk.Seq(tc.chunk-1, logchunk.Whole) {
			t.Errorf("Seq(%d, %d) does not sort after the previous chunk", tc.chunk, tc.i)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ meta, text string }{
		{"", "text without lines"},
		{"e0/6", "short"},
		{"e0/1", "long"},
		{"e0/2,e0/2", "ab"},
		{"x0/0", ""},
		{"e0", "a"},
		{"eX/1", "a"},
		{"e0/-1", ""},
		{"(open0/0", ""},
		{"(bad%2)0/0", ""},
		{"(bad%zz)0/0", ""},
		{",", "\n"},
	} {
		if _, err := logchunk.Decode(0, tc.meta, tc.text); !errors.Is(err, logchunk.ErrCorrupt) {
			t.Errorf("Decode(%q, %q) = %v, want ErrCorrupt", tc.meta, tc.text, err)
		}
	}
}

// FuzzRoundTrip: whatever the lines, a chunk decodes to them; and no
// stored bytes make Decode panic.
func FuzzRoundTrip(f *testing.F) {
	f.Add("hello", "stderr", int64(0), "e0/5")
	f.Add("a\nb", "odd)", int64(-5), "o0/0,e1/1")
	f.Add("", "", int64(1)<<40, "(%41)0/0")
	f.Fuzz(func(t *testing.T, line, stream string, delta int64, meta string) {
		_, _ = logchunk.Decode(delta, meta, line) // must not panic
		lines := []function.LogLine{
			{Time: base, Stream: stream, Line: line},
			{Time: base.Add(time.Duration(delta % int64(1000*time.Hour))), Stream: "stdout", Line: strings.ToUpper(line)},
		}
		c := logchunk.Encode(lines)
		got, err := logchunk.Decode(c.Base, c.Meta, c.Text)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", lines, err)
		}
		same(t, got, lines)
	})
}
