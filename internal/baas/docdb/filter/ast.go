// Package filter parses the document database's filter and sort language:
// the filter= and sort= parameters of GET /v1/db/{collection}. It turns
// outside input into a small, bounded AST of typed values that a store
// compiles to its own query language (internal/store/docsql does SQL).
//
// The syntax is a CEL-like subset, so that users meet one expression style
// in filters and in access rules:
//
//	status == "open" && priority > 2 && (owner == "u1" || "x" in tags)
//	address.city in ["Lyon", "Oslo"] && !has(deleted_at)
//	name.startsWith("Jo") || 2.5 <= score
//
// Comparisons are == != < <= > >= between a field path and a literal, in
// either order; && binds tighter than ||; ! applies to a parenthesized
// expression, has(...) or startsWith. `path in [...]` tests membership in a
// list of literals and `literal in path` tests that an array field contains
// the literal. Literals are JSON's: double-quoted strings with JSON escapes,
// integers (int64), floats (float64), true, false and null. Booleans and
// null compare only with == and != (and in). Strings may not contain NUL
// (\u0000), which PostgreSQL can't store.
//
// Package filter knows nothing of storage or HTTP: it must never import
// database/sql, a store or net/http.
package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expr is a node of a parsed filter. Its String method prints source that
// parses back to the same Expr.
type Expr interface {
	String() string
	isExpr()
}

// Op is a comparison operator.
type Op uint8

// The comparison operators.
const (
	OpEq Op = iota + 1 // ==
	OpNe               // !=
	OpLt               // <
	OpLe               // <=
	OpGt               // >
	OpGe               // >=
)

var opText = [...]string{OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">="}

// String returns the operator as written in source.
func (o Op) String() string {
	if o < OpEq || o > OpGe {
		return "Op(" + strconv.Itoa(int(o)) + ")"
	}
	return opText[o]
}

// flip returns the operator for the operands swapped: 2 < a is a > 2.
func (o Op) flip() Op {
	switch o {
	case OpLt:
		return OpGt
	case OpLe:
		return OpGe
	case OpGt:
		return OpLt
	case OpGe:
		return OpLe
	}
	return o
}

// Cmp compares the field at Path with a literal: Path Op Value. Value is a
// string, int64, float64, bool or nil (JSON null).
type Cmp struct {
	Path  []string
	Op    Op
	Value any
}

// In is true when the field at Path equals one of Values: path in [v, ...].
type In struct {
	Path   []string
	Values []any
}

// Contains is true when the field at Path is an array with an element equal
// to Value: value in path.
type Contains struct {
	Path  []string
	Value any
}

// StartsWith is true when the field at Path is a string that begins with
// Prefix: path.startsWith("prefix").
type StartsWith struct {
	Path   []string
	Prefix string
}

// Has is true when the field at Path is present and not null: has(path).
type Has struct {
	Path []string
}

// AndExpr is true when all of its Terms are (at least two; nested
// conjunctions are flattened).
type AndExpr struct {
	Terms []Expr
}

// OrExpr is true when any of its Terms is (at least two; nested
// disjunctions are flattened).
type OrExpr struct {
	Terms []Expr
}

// NotExpr negates X.
type NotExpr struct {
	X Expr
}

func (Cmp) isExpr()        {}
func (In) isExpr()         {}
func (Contains) isExpr()   {}
func (StartsWith) isExpr() {}
func (Has) isExpr()        {}
func (AndExpr) isExpr()    {}
func (OrExpr) isExpr()     {}
func (NotExpr) isExpr()    {}

// And returns the conjunction of a and b, flattening nested conjunctions.
// A nil operand is "match everything": And(nil, b) is b. The access-rule
// layer uses it to add its terms to a user's filter.
func And(a, b Expr) Expr { return join(a, b, false) }

// Or returns the disjunction of a and b, flattening nested disjunctions.
// A nil operand is ignored: Or(nil, b) is b.
func Or(a, b Expr) Expr { return join(a, b, true) }

func join(a, b Expr, or bool) Expr {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	var terms []Expr
	for _, e := range []Expr{a, b} {
		switch x := e.(type) {
		case AndExpr:
			if !or {
				terms = append(terms, x.Terms...)
				continue
			}
		case OrExpr:
			if or {
				terms = append(terms, x.Terms...)
				continue
			}
		}
		terms = append(terms, e)
	}
	if or {
		return OrExpr{Terms: terms}
	}
	return AndExpr{Terms: terms}
}

// Not returns the negation of x.
func Not(x Expr) Expr { return NotExpr{X: x} }

// Eq returns the comparison path == v. Go integers and float32 are widened
// to int64 and float64; a value of another type makes the compiled filter
// fail, as does a path that isn't made of identifiers.
func Eq(path []string, v any) Expr {
	return Cmp{Path: path, Op: OpEq, Value: Normalize(v)}
}

// Normalize widens Go integers to int64 and float32 to float64, so that
// values built in Go compare like parsed ones. Other values are returned as
// they are.
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// Walk calls fn for e and each expression under it, parents first.
func Walk(e Expr, fn func(Expr)) {
	if e == nil {
		return
	}
	fn(e)
	switch x := e.(type) {
	case AndExpr:
		for _, t := range x.Terms {
			Walk(t, fn)
		}
	case OrExpr:
		for _, t := range x.Terms {
			Walk(t, fn)
		}
	case NotExpr:
		Walk(x.X, fn)
	}
}

// PathOf returns the field path a leaf expression tests, or nil for And, Or
// and Not.
func PathOf(e Expr) []string {
	switch x := e.(type) {
	case Cmp:
		return x.Path
	case In:
		return x.Path
	case Contains:
		return x.Path
	case StartsWith:
		return x.Path
	case Has:
		return x.Path
	}
	return nil
}

// Fields lists the field paths e uses, each once, in order of first use.
// The API checks them against a collection's schema.
func Fields(e Expr) [][]string {
	var out [][]string
	seen := map[string]bool{}
	Walk(e, func(e Expr) {
		if p := PathOf(e); p != nil {
			k := strings.Join(p, ".")
			if !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	})
	return out
}

// ValidIdent reports whether s is a field name the language accepts:
// [A-Za-z_][A-Za-z0-9_]*. Compilers that put names into query text rely on
// it.
func ValidIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func (c Cmp) String() string {
	return pathString(c.Path) + " " + c.Op.String() + " " + Literal(c.Value)
}

func (in In) String() string {
	var b strings.Builder
	b.WriteString(pathString(in.Path))
	b.WriteString(" in [")
	for i, v := range in.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Literal(v))
	}
	b.WriteString("]")
	return b.String()
}

func (c Contains) String() string { return Literal(c.Value) + " in " + pathString(c.Path) }

func (s StartsWith) String() string {
	return pathString(s.Path) + ".startsWith(" + Literal(s.Prefix) + ")"
}

func (h Has) String() string { return "has(" + pathString(h.Path) + ")" }

func (a AndExpr) String() string {
	parts := make([]string, len(a.Terms))
	for i, t := range a.Terms {
		parts[i] = t.String()
		if _, ok := t.(OrExpr); ok {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, " && ")
}

func (o OrExpr) String() string {
	parts := make([]string, len(o.Terms))
	for i, t := range o.Terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, " || ")
}

func (n NotExpr) String() string { return "!(" + n.X.String() + ")" }

func pathString(p []string) string { return strings.Join(p, ".") }

// Literal prints a value as a literal of the language (and of JSON).
func Literal(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "null" // not representable; the parser never makes one
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0" // stay a float when parsed again
		}
		return s
	case string:
		return quote(x)
	}
	return fmt.Sprintf("<unsupported %T>", v) // only Go-built values; compilers reject them
}

// quote writes s as a JSON string, escaping only what JSON requires.
func quote(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		case c < utf8.RuneSelf:
			b.WriteByte(c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b.WriteString(`\ufffd`)
			} else {
				b.WriteString(s[i : i+n])
			}
			i += n
			continue
		}
		i++
	}
	b.WriteByte('"')
	return b.String()
}
