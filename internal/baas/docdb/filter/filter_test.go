package filter

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func p(s ...string) []string { return s }

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  Expr
		print string // String() of the result, when not src
	}{
		{name: "empty", src: "  ", want: nil},
		{name: "eq string", src: `status == "open"`, want: Cmp{p("status"), OpEq, "open"}},
		{name: "ops", src: `a != 1 && b < 2 && c <= 3 && d > 4 && e >= 5`, want: AndExpr{[]Expr{
			Cmp{p("a"), OpNe, int64(1)}, Cmp{p("b"), OpLt, int64(2)}, Cmp{p("c"), OpLe, int64(3)},
			Cmp{p("d"), OpGt, int64(4)}, Cmp{p("e"), OpGe, int64(5)}}}},
		{name: "literal first flips", src: `2 < priority`, want: Cmp{p("priority"), OpGt, int64(2)}, print: `priority > 2`},
		{name: "literal first eq", src: `"x" == a`, want: Cmp{p("a"), OpEq, "x"}, print: `a == "x"`},
		{name: "nested path", src: `address.city == "Lyon"`, want: Cmp{p("address", "city"), OpEq, "Lyon"}},
		{name: "floats", src: `a == 5.0 || b > -2.5e-3 || c < 1E21`, want: OrExpr{[]Expr{
			Cmp{p("a"), OpEq, 5.0}, Cmp{p("b"), OpGt, -2.5e-3}, Cmp{p("c"), OpLt, 1e21}}},
			print: `a == 5.0 || b > -0.0025 || c < 1e+21`},
		{name: "negative int", src: `a == -7`, want: Cmp{p("a"), OpEq, int64(-7)}},
		{name: "bool null", src: `a == true && b != false && c == null`, want: AndExpr{[]Expr{
			Cmp{p("a"), OpEq, true}, Cmp{p("b"), OpNe, false}, Cmp{p("c"), OpEq, nil}}}},
		{name: "precedence", src: `a == 1 || b == 2 && c == 3`, want: OrExpr{[]Expr{
			Cmp{p("a"), OpEq, int64(1)}, AndExpr{[]Expr{Cmp{p("b"), OpEq, int64(2)}, Cmp{p("c"), OpEq, int64(3)}}}}}},
		{name: "parens", src: `(a == 1 || b == 2) && c == 3`, want: AndExpr{[]Expr{
			OrExpr{[]Expr{Cmp{p("a"), OpEq, int64(1)}, Cmp{p("b"), OpEq, int64(2)}}}, Cmp{p("c"), OpEq, int64(3)}}}},
		{name: "parens flatten", src: `a == 1 && (b == 2 && c == 3)`, want: AndExpr{[]Expr{
			Cmp{p("a"), OpEq, int64(1)}, Cmp{p("b"), OpEq, int64(2)}, Cmp{p("c"), OpEq, int64(3)}}},
			print: `a == 1 && b == 2 && c == 3`},
		{name: "brief example", src: `status == "open" && priority > 2 && (owner == "u1" || "x" in tags)`, want: AndExpr{[]Expr{
			Cmp{p("status"), OpEq, "open"}, Cmp{p("priority"), OpGt, int64(2)},
			OrExpr{[]Expr{Cmp{p("owner"), OpEq, "u1"}, Contains{p("tags"), "x"}}}}}},
		{name: "in list", src: `a in ["x", 3, null, true]`, want: In{p("a"), []any{"x", int64(3), nil, true}}},
		{name: "empty in list", src: `a in []`, want: In{p("a"), []any{}}},
		{name: "not", src: `!(a == 1)`, want: NotExpr{Cmp{p("a"), OpEq, int64(1)}}},
		{name: "not has", src: `!has(a.b)`, want: NotExpr{Has{p("a", "b")}}, print: `!(has(a.b))`},
		{name: "not not", src: `!!(a == 1)`, want: NotExpr{NotExpr{Cmp{p("a"), OpEq, int64(1)}}}, print: `!(!(a == 1))`},
		{name: "startsWith", src: `name.startsWith("Jo")`, want: StartsWith{p("name"), "Jo"}},
		{name: "nested startsWith", src: `a.b.startsWith("")`, want: StartsWith{p("a", "b"), ""}},
		{name: "field named startsWith", src: `a.startsWith == 1`, want: Cmp{p("a", "startsWith"), OpEq, int64(1)}},
		{name: "field named has", src: `has == 1`, want: Cmp{p("has"), OpEq, int64(1)}},
		{name: "keyword after dot", src: `a.in == 1`, want: Cmp{p("a", "in"), OpEq, int64(1)}},
		{name: "escapes", src: `a == "q\"b\\s\/\b\f\n\r\t\u00e9\ud83d\ude00"`, want: Cmp{p("a"), OpEq, "q\"b\\s/\b\f\n\r\té😀"},
			print: `a == "q\"b\\s/\u0008\u000c\n\r\té😀"`},
		{name: "unicode", src: `name == "Zoë 東京"`, want: Cmp{p("name"), OpEq, "Zoë 東京"}},
		{name: "injection is a string", src: `a == "x' OR 1=1 --"`, want: Cmp{p("a"), OpEq, "x' OR 1=1 --"}},
		{name: "blanks", src: "\ta==1\n&&\r\nb==2 ", want: AndExpr{[]Expr{Cmp{p("a"), OpEq, int64(1)}, Cmp{p("b"), OpEq, int64(2)}}},
			print: `a == 1 && b == 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.src, got, tt.want)
			}
			if got == nil {
				return
			}
			want := tt.print
			if want == "" {
				want = tt.src
			}
			if s := got.String(); s != want {
				t.Fatalf("String() = %s, want %s", s, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := `a == "` + strings.Repeat("x", MaxString+1) + `"`
	tests := []struct {
		name   string
		src    string
		offset int
		msg    string
	}{
		{name: "single =", src: `a = 1`, offset: 2, msg: `write "=="`},
		{name: "single &", src: `a == 1 & b == 2`, offset: 7, msg: `write "&&"`},
		{name: "single quotes", src: `a == 'x'`, offset: 5, msg: "double quotes"},
		{name: "unclosed string", src: `a == "x`, offset: 5, msg: "not closed"},
		{name: "bad escape", src: `a == "\x41"`, offset: 6, msg: `unknown escape \x`},
		{name: "short unicode escape", src: `a == "\u12"`, offset: 6, msg: "four hex digits"},
		{name: "lone surrogate", src: `a == "\ud83d"`, offset: 6, msg: "surrogate"},
		{name: "nul", src: `a == "\u0000"`, offset: 6, msg: "NUL"},
		{name: "control char", src: "a == \"x\ny\"", offset: 7, msg: "control character"},
		{name: "invalid utf8", src: "a == \"\xff\"", offset: 6, msg: "UTF-8"},
		{name: "string too long", src: long, offset: 5, msg: "longer than 1024 bytes"},
		{name: "int overflow", src: `a == 99999999999999999999`, offset: 5, msg: "out of range"},
		{name: "float overflow", src: `a == 1e999`, offset: 5, msg: "out of range"},
		{name: "trailing dot", src: `a == 1.`, offset: 7, msg: "decimal point"},
		{name: "minus alone", src: `a == -x`, offset: 5, msg: "digits"},
		{name: "number then letter", src: `a == 12x`, offset: 7, msg: "after a number"},
		{name: "missing value", src: `a ==`, offset: 4, msg: "expected a value"},
		{name: "field vs field", src: `a == b`, offset: 5, msg: "not with the field"},
		{name: "value vs value", src: `1 == 2`, offset: 5, msg: "expected a field name"},
		{name: "bare field", src: `done`, offset: 4, msg: "a comparison"},
		{name: "null ordered", src: `a < null`, offset: 2, msg: "null compares only"},
		{name: "bool ordered", src: `true >= a`, offset: 5, msg: "true and false compare only"},
		{name: "ambiguous not", src: `!a == 1`, offset: 0, msg: "write !(a == 1) or a != 1"},
		{name: "ambiguous not in", src: `!a in [1]`, offset: 0, msg: "write !(a in [1])"},
		{name: "unclosed paren", src: `(a == 1`, offset: 7, msg: `expected ")"`},
		{name: "extra paren", src: `a == 1)`, offset: 6, msg: "expected &&, || or the end"},
		{name: "in without list", src: `a in "x"`, offset: 5, msg: `"[" to start`},
		{name: "in list field", src: `a in [b]`, offset: 6, msg: "a value in the list"},
		{name: "in list comma", src: `a in [1 2]`, offset: 8, msg: `"," or "]"`},
		{name: "startsWith number", src: `a.startsWith(1)`, offset: 13, msg: `a "string" prefix`},
		{name: "unknown method", src: `a.endsWith("x") == 1`, offset: 10, msg: `expected a comparison`},
		{name: "reserved field", src: `in == 1`, offset: 0, msg: "expected a field name"},
		{name: "literal both sides", src: `null == true`, offset: 8, msg: "expected a field name"},
		{name: "dangling and", src: `a == 1 &&`, offset: 9, msg: "a field name"},
		{name: "weird char", src: `a == 1 ; b`, offset: 7, msg: `unexpected character ';'`},
		{name: "too long", src: strings.Repeat(" ", MaxSource+1), offset: MaxSource, msg: "longer than 4096"},
		{name: "too deep", src: strings.Repeat("(", MaxDepth+1) + "a == 1" + strings.Repeat(")", MaxDepth+1), offset: MaxDepth, msg: "deeper than 32"},
		{name: "too deep not", src: strings.Repeat("!", MaxDepth+1) + "has(a)", offset: MaxDepth, msg: "deeper than 32"},
		{name: "too many predicates", src: strings.Repeat("a == 1 || ", MaxPredicates) + "a == 1", offset: 10 * MaxPredicates, msg: "more than 64 comparisons"},
		{name: "list too long", src: "a in [" + strings.Repeat("1, ", MaxInList) + "1]", offset: 5, msg: "more than 100 values"},
		{name: "path too long", src: "a.b.c.d.e.f.g.h.i == 1", offset: 0, msg: "more than 8 parts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.src)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%.40q) = %v, %v; want an *Error", tt.src, e, err)
			}
			if fe.Offset != tt.offset || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("Parse(%.40q): %v; want offset %d and %q", tt.src, err, tt.offset, tt.msg)
			}
		})
	}
}

func TestBoundsAreInclusive(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{name: "depth", src: strings.Repeat("(", MaxDepth) + "a == 1" + strings.Repeat(")", MaxDepth)},
		{name: "predicates", src: strings.Repeat("a == 1 || ", MaxPredicates-1) + "a == 1"},
		{name: "list", src: "a in [" + strings.Repeat("1, ", MaxInList-1) + "1]"},
		{name: "path", src: "a.b.c.d.e.f.g.h == 1"},
		{name: "string", src: `a == "` + strings.Repeat("é", MaxString/2) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.src); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	user, err := Parse(`a == 1 && b == 2`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  Expr
		want Expr
	}{
		{name: "and flattens", got: And(user, Eq(p("owner"), "u1")), want: AndExpr{[]Expr{
			Cmp{p("a"), OpEq, int64(1)}, Cmp{p("b"), OpEq, int64(2)}, Cmp{p("owner"), OpEq, "u1"}}}},
		{name: "and nil", got: And(nil, Eq(p("owner"), "u1")), want: Cmp{p("owner"), OpEq, "u1"}},
		{name: "and nil right", got: And(user, nil), want: user},
		{name: "eq widens int", got: Eq(p("n"), 3), want: Cmp{p("n"), OpEq, int64(3)}},
		{name: "eq widens float32", got: Eq(p("n"), float32(0.5)), want: Cmp{p("n"), OpEq, 0.5}},
		{name: "or keeps and", got: Or(user, Eq(p("c"), true)), want: OrExpr{[]Expr{user, Cmp{p("c"), OpEq, true}}}},
		{name: "not", got: Not(user), want: NotExpr{user}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	e, err := Parse(`a == 1 && (b.c > 2 || !has(a)) && "x" in tags && d in [1] && e.startsWith("q")`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{p("a"), p("b", "c"), p("tags"), p("d"), p("e")}
	if got := Fields(e); !reflect.DeepEqual(got, want) {
		t.Fatalf("Fields = %v, want %v", got, want)
	}
	if got := Fields(nil); got != nil {
		t.Fatalf("Fields(nil) = %v", got)
	}
}

func TestParseSort(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		want   []SortKey
		offset int
		msg    string
	}{
		{name: "empty", src: "", want: nil},
		{name: "two keys", src: "-priority,created_at", want: []SortKey{{p("priority"), true}, {p("created_at"), false}}},
		{name: "nested and blanks", src: " address.city , -n", want: []SortKey{{p("address", "city"), false}, {p("n"), true}}},
		{name: "four keys", src: "a,b,c,d", want: []SortKey{{p("a"), false}, {p("b"), false}, {p("c"), false}, {p("d"), false}}},
		{name: "five keys", src: "a,b,c,d,e", offset: 8, msg: "more than 4 keys"},
		{name: "empty key", src: "a,,b", offset: 2, msg: "empty sort key"},
		{name: "bare minus", src: "a,-", offset: 3, msg: "empty sort key"},
		{name: "bad name", src: "a,b.1x", offset: 4, msg: `"1x" is not a field name`},
		{name: "twice", src: "a,-a", offset: 3, msg: "a is sorted on twice"},
		{name: "path too long", src: "a.b.c.d.e.f.g.h.i", offset: 0, msg: "more than 8 parts"},
		{name: "too long", src: strings.Repeat("a", MaxSource+1), offset: MaxSource, msg: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSort(tt.src)
			if tt.msg != "" {
				var fe *Error
				if !errors.As(err, &fe) || fe.Offset != tt.offset || !strings.Contains(fe.Msg, tt.msg) {
					t.Fatalf("ParseSort(%.40q) = %v, %v; want offset %d and %q", tt.src, got, err, tt.offset, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	const src = `status == "open" && priority > 2 && (owner == "u1" || "x" in tags) && address.city in ["Lyon", "Oslo"]`
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
