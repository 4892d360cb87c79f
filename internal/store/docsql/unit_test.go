package docsql

import (
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
)

// TestCompileRejects: ASTs built in Go (the access-rule layer) are checked
// before any of them reaches SQL text.
func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		e    filter.Expr
		msg  string
	}{
		{name: "quote in path", e: filter.Eq([]string{"a'--"}, "x"), msg: "not a field name"},
		{name: "empty path", e: filter.Eq(nil, "x"), msg: "1 to 8 parts"},
		{name: "long path", e: filter.Eq(strings.Split("a.b.c.d.e.f.g.h.i", "."), 1), msg: "1 to 8 parts"},
		{name: "under a column", e: filter.Eq([]string{"id", "x"}, 1), msg: "id is a string"},
		{name: "NaN", e: filter.Eq([]string{"a"}, math.NaN()), msg: "not a finite number"},
		{name: "unsupported type", e: filter.Eq([]string{"a"}, []int{1}), msg: "unsupported value"},
		{name: "uint64", e: filter.Eq([]string{"a"}, uint64(1)), msg: "unsupported value"},
		{name: "NUL", e: filter.Eq([]string{"a"}, "x\x00"), msg: "NUL"},
		{name: "ordered null", e: filter.Cmp{Path: []string{"a"}, Op: filter.OpLt, Value: nil}, msg: "compares only"},
		{name: "bad op", e: filter.Cmp{Path: []string{"a"}, Op: 0, Value: int64(1)}, msg: "unknown operator"},
		{name: "empty and", e: filter.AndExpr{}, msg: "AND of no terms"},
		{name: "nil in not", e: filter.NotExpr{}, msg: "! of nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, d := range []Dialect{SQLite, Postgres} {
				where, _, err := Compile(d, tt.e, 0)
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("%v: Compile = %q, %v; want an error with %q", d, where, err, tt.msg)
				}
			}
		})
	}
	if _, _, err := Compile(0, nil, 0); err == nil {
		t.Fatal("Compile with no dialect succeeded")
	}
	if _, err := IndexExpr(SQLite, []string{"a'); DROP TABLE docs; --"}); err == nil {
		t.Fatal("IndexExpr of a bad path succeeded")
	}
}

// TestCompileText pins the SQL of a few terms: index-friendly shapes and
// placeholders numbered from argBase+1.
func TestCompileText(t *testing.T) {
	e, err := filter.Parse(`status == "open" && priority > 2 && address.city != null`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		d     Dialect
		where string
		args  []any
	}{
		{name: "sqlite", d: SQLite,
			where: `((json_type(data, '$.status') = 'text' AND json_extract(data, '$.status') = ?) AND ` +
				`(json_type(data, '$.priority') IN ('integer', 'real') AND json_extract(data, '$.priority') > ?) AND ` +
				`((json_extract(data, '$.address.city') IS NULL) IS NOT TRUE))`,
			args: []any{"open", int64(2)}},
		{name: "postgres", d: Postgres,
			where: `((data->'status') = $3::text::jsonb AND ` +
				`(jsonb_typeof(data->'priority') = 'number' AND (data->'priority') > $4::text::jsonb) AND ` +
				`((((data->'address'->'city') IS NULL OR (data->'address'->'city') = 'null'::jsonb)) IS NOT TRUE))`,
			args: []any{`"open"`, "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			where, args, err := Compile(tt.d, e, 2)
			if err != nil {
				t.Fatal(err)
			}
			if where != tt.where || !reflect.DeepEqual(args, tt.args) {
				t.Fatalf("got  %s %#v\nwant %s %#v", where, args, tt.where, tt.args)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	keys, err := filter.ParseSort("-priority,name,tags,created_at")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCursor(keys, []byte(`{"priority":5.0,"name":"Zoë \"q\"","tags":[1,2]}`), "d1", "2026-01-01T00:00:00.000000Z", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Cursor{Values: []any{5.0, `Zoë "q"`, map[string]any{}, "2026-01-01T00:00:00.000000Z"}, ID: "d1"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("NewCursor = %#v, want %#v", c, want)
	}
	s, err := EncodeCursor(keys, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCursor(keys, s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeCursor = %#v, want %#v", got, want)
	}
	if _, err := EncodeCursor(keys, Cursor{Values: []any{strings.Repeat("x", MaxCursor), nil, nil, ""}}); err == nil {
		t.Fatal("EncodeCursor of a huge value succeeded")
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	keys := []filter.SortKey{{Path: []string{"priority"}}, {Path: []string{"created_at"}}}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		token string
		why   string
	}{
		{name: "not base64", token: "!!", why: "not base64url"},
		{name: "not json", token: enc("nope"), why: "not a cursor"},
		{name: "trailing data", token: enc(`{"s":"priority,created_at","v":[1,"t"],"id":"a"} {}`), why: "not a cursor"},
		{name: "unknown field", token: enc(`{"s":"priority,created_at","v":[1,"t"],"id":"a","x":1}`), why: "not a cursor"},
		{name: "no id", token: enc(`{"s":"priority,created_at","v":[1,"t"]}`), why: "not a cursor"},
		{name: "other sort", token: enc(`{"s":"-priority,created_at","v":[1,"t"],"id":"a"}`), why: "another sort"},
		{name: "too few values", token: enc(`{"s":"priority,created_at","v":[1],"id":"a"}`), why: "wrong number"},
		{name: "column not a string", token: enc(`{"s":"priority,created_at","v":[1,2],"id":"a"}`), why: "bad value"},
		{name: "huge number", token: enc(`{"s":"priority,created_at","v":[1e999,"t"],"id":"a"}`), why: "bad value"},
		{name: "NUL id", token: enc(`{"s":"priority,created_at","v":[1,"t"],"id":"\u0000"}`), why: "bad id"},
		{name: "too long", token: strings.Repeat("A", MaxCursor+1), why: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCursor(keys, tt.token)
			if !errors.Is(err, ErrCursor) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("DecodeCursor = %#v, %v; want ErrCursor (%s)", c, err, tt.why)
			}
		})
	}
}

// FuzzDecodeCursor: no panic; what decodes compiles on both dialects and
// encodes to a token that decodes to the same cursor.
func FuzzDecodeCursor(f *testing.F) {
	keys := []filter.SortKey{{Path: []string{"priority"}, Desc: true}, {Path: []string{"created_at"}}}
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"s":"-priority,created_at","v":[1.5,"t"],"id":"a"}`)))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := DecodeCursor(keys, token)
		if err != nil {
			if !errors.Is(err, ErrCursor) {
				t.Fatalf("error %v is not ErrCursor", err)
			}
			return
		}
		for _, d := range []Dialect{SQLite, Postgres} {
			if _, _, err := After(d, keys, c, 0); err != nil {
				t.Fatalf("After(%v, %#v): %v", d, c, err)
			}
		}
		again, err := EncodeCursor(keys, c)
		if err != nil {
			return // a value too long to re-encode
		}
		c2, err := DecodeCursor(keys, again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("%#v re-encodes to %q, which decodes to %#v, %v", c, again, c2, err)
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	e, err := filter.Parse(`status == "open" && priority > 2 && owner in ["u1", "u2"]`)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []Dialect{SQLite, Postgres} {
		b.Run(d.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Compile(d, e, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
