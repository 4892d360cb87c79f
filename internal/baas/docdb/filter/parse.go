package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Bounds on a filter, the outside input Parse reads.
const (
	MaxSource     = 4 << 10 // bytes of source
	MaxDepth      = 32      // nesting of parentheses and !
	MaxPredicates = 64      // comparisons, in, has and startsWith terms
	MaxInList     = 100     // values in one in [...] list
	MaxPathLen    = 8       // segments of a field path
	MaxString     = 1 << 10 // bytes of a decoded string literal
)

// Error is a filter or sort that doesn't parse: Msg says what to fix and
// Offset is the byte of the source where the problem is.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Msg) }

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tOp     // == != < <= > >=
	tAnd    // &&
	tOr     // ||
	tNot    // !
	tLParen // (
	tRParen // )
	tLBrack // [
	tRBrack // ]
	tComma  // ,
	tDot    // .
)

type token struct {
	kind tokKind
	pos  int
	text string // the source of the token
	op   Op
	str  string // decoded string literal
	i    int64
	f    float64
}

// describe names a token in an error message.
func (t token) describe() string {
	if t.kind == tEOF {
		return "the end of the filter"
	}
	s := t.text
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return strconv.Quote(s)
}

type lexer struct {
	src string
	pos int
}

func errAt(pos int, format string, args ...any) *Error {
	return &Error{Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.pos]) >= 0 {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	two := ""
	if l.pos+1 < len(l.src) {
		two = l.src[l.pos : l.pos+2]
	}
	simple := func(k tokKind, n int) (token, error) {
		l.pos += n
		return token{kind: k, pos: start, text: l.src[start:l.pos]}, nil
	}
	opTok := func(op Op, n int) (token, error) {
		t, err := simple(tOp, n)
		t.op = op
		return t, err
	}
	switch {
	case two == "==":
		return opTok(OpEq, 2)
	case two == "!=":
		return opTok(OpNe, 2)
	case two == "<=":
		return opTok(OpLe, 2)
	case two == ">=":
		return opTok(OpGe, 2)
	case two == "&&":
		return simple(tAnd, 2)
	case two == "||":
		return simple(tOr, 2)
	case c == '<':
		return opTok(OpLt, 1)
	case c == '>':
		return opTok(OpGt, 1)
	case c == '!':
		return simple(tNot, 1)
	case c == '(':
		return simple(tLParen, 1)
	case c == ')':
		return simple(tRParen, 1)
	case c == '[':
		return simple(tLBrack, 1)
	case c == ']':
		return simple(tRBrack, 1)
	case c == ',':
		return simple(tComma, 1)
	case c == '.':
		return simple(tDot, 1)
	case c == '=':
		return token{}, errAt(start, `"=" is not an operator: write "==" to compare`)
	case c == '&' || c == '|':
		return token{}, errAt(start, "%q is not an operator: write %q", c, string([]byte{c, c}))
	case c == '"':
		return l.str()
	case c == '-' || '0' <= c && c <= '9':
		return l.num()
	case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		for l.pos < len(l.src) && isIdentByte(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tIdent, pos: start, text: l.src[start:l.pos]}, nil
	case c == '\'':
		return token{}, errAt(start, "strings are written in double quotes")
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, errAt(start, "unexpected character %q", r)
}

func isIdentByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// num lexes a JSON number: an int64 without fraction or exponent, else a
// float64.
func (l *lexer) num() (token, error) {
	start := l.pos
	s := l.src
	i := l.pos
	if s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i > j
	}
	if !digits() {
		return token{}, errAt(start, "a number needs digits after %q", "-")
	}
	isFloat := false
	if i < len(s) && s[i] == '.' {
		i++
		isFloat = true
		if !digits() {
			return token{}, errAt(i, "a number needs digits after its decimal point")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		isFloat = true
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return token{}, errAt(i, "a number needs digits in its exponent")
		}
	}
	if i < len(s) && (isIdentByte(s[i]) || s[i] == '.') {
		return token{}, errAt(i, "unexpected %q after a number", s[i])
	}
	l.pos = i
	t := token{pos: start, text: s[start:i]}
	if isFloat {
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return token{}, errAt(start, "number %s is out of range", t.text)
		}
		t.kind, t.f = tFloat, f
		return t, nil
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return token{}, errAt(start, "integer %s is out of range (at most 19 digits); write a float such as 1e20 instead", t.text)
	}
	t.kind, t.i = tInt, n
	return t, nil
}

// str lexes a double-quoted string with JSON escapes.
func (l *lexer) str() (token, error) {
	start := l.pos
	s := l.src
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(s) {
			return token{}, errAt(start, "string is not closed: add a %q", `"`)
		}
		if b.Len() > MaxString {
			return token{}, errAt(start, "string is longer than %d bytes", MaxString)
		}
		c := s[i]
		switch {
		case c == '"':
			l.pos = i + 1
			return token{kind: tString, pos: start, text: s[start:l.pos], str: b.String()}, nil
		case c < 0x20:
			return token{}, errAt(i, "control character %q in a string: escape it (\\n, \\t, \\u00XX)", c)
		case c == '\\':
			if i+1 >= len(s) {
				return token{}, errAt(start, "string is not closed: add a %q", `"`)
			}
			e := s[i+1]
			if e == 'u' {
				r, n, err := unicodeEscape(s, i)
				if err != nil {
					return token{}, err
				}
				if r == 0 {
					return token{}, errAt(i, `strings may not contain NUL (\u0000)`)
				}
				b.WriteRune(r)
				i += n
				continue
			}
			dec := strings.IndexByte(`"\/bfnrt`, e)
			if dec < 0 {
				return token{}, errAt(i, `unknown escape \%c: use \", \\, \/, \b, \f, \n, \r, \t or \uXXXX`, e)
			}
			b.WriteByte("\"\\/\b\f\n\r\t"[dec])
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return token{}, errAt(i, "invalid UTF-8 in a string")
			}
			b.WriteString(s[i : i+n])
			i += n
		}
	}
}

// unicodeEscape decodes \uXXXX (and a surrogate pair \uXXXX\uXXXX) at s[i].
func unicodeEscape(s string, i int) (rune, int, error) {
	hex4 := func(j int) (rune, bool) {
		if j+6 > len(s) || s[j] != '\\' || s[j+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(s[j+2:j+6], 16, 16)
		return rune(v), err == nil
	}
	r, ok := hex4(i)
	if !ok {
		return 0, 0, errAt(i, `\u needs four hex digits, as in \u00e9`)
	}
	if !utf16.IsSurrogate(r) {
		return r, 6, nil
	}
	if r2, ok := hex4(i + 6); ok {
		if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
			return p, 12, nil
		}
	}
	return 0, 0, errAt(i, `\u%04x is half of a surrogate pair: write the whole pair or the character itself`, r)
}

// parser is a recursive-descent parser over the lexer, one token ahead.
type parser struct {
	lex   lexer
	tok   token
	depth int
	preds int
	// lastParen is set when the term unary just parsed was parenthesized,
	// so that ! can tell !(a == 1) from the ambiguous !a == 1.
	lastParen bool
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// Parse parses a filter. An empty (or blank) filter is nil, which matches
// every document. Errors are *Error.
func Parse(src string) (Expr, error) {
	if len(src) > MaxSource {
		return nil, errAt(MaxSource, "filter is longer than %d bytes", MaxSource)
	}
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("&&, || or the end of the filter")
	}
	return e, nil
}

func (p *parser) unexpected(want string) error {
	return errAt(p.tok.pos, "expected %s, found %s", want, p.tok.describe())
}

func (p *parser) or() (Expr, error) {
	e, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOr {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		e = Or(e, r)
	}
	return e, nil
}

func (p *parser) and() (Expr, error) {
	e, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tAnd {
		if err := p.advance(); err != nil {
			return nil, err
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		e = And(e, r)
	}
	return e, nil
}

func (p *parser) nest(pos int) error {
	p.depth++
	if p.depth > MaxDepth {
		return errAt(pos, "filter nests deeper than %d parentheses and !", MaxDepth)
	}
	return nil
}

// unary parses a ! term, a parenthesized expression or a predicate.
func (p *parser) unary() (Expr, error) {
	switch p.tok.kind {
	case tNot:
		pos := p.tok.pos
		if err := p.nest(pos); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if c, ok := x.(Cmp); ok && !p.lastParen {
			return nil, errAt(pos, "! applies to the term after it: write !(%s) or %s", c, Cmp{c.Path, negate(c.Op), c.Value})
		}
		if in, ok := x.(In); ok && !p.lastParen {
			return nil, errAt(pos, "! applies to the term after it: write !(%s)", in)
		}
		if c, ok := x.(Contains); ok && !p.lastParen {
			return nil, errAt(pos, "! applies to the term after it: write !(%s)", c)
		}
		p.depth--
		p.lastParen = false
		return NotExpr{X: x}, nil
	case tLParen:
		if err := p.nest(p.tok.pos); err != nil {
			return nil, err
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.unexpected(`")"`)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		p.depth--
		p.lastParen = true
		return e, nil
	}
	p.lastParen = false
	return p.predicate()
}

func negate(o Op) Op {
	switch o {
	case OpEq:
		return OpNe
	case OpNe:
		return OpEq
	case OpLt:
		return OpGe
	case OpLe:
		return OpGt
	case OpGt:
		return OpLe
	}
	return OpLt
}

func (p *parser) countPred(pos int) error {
	p.preds++
	if p.preds > MaxPredicates {
		return errAt(pos, "filter has more than %d comparisons", MaxPredicates)
	}
	return nil
}

// predicate parses a comparison, in, has() or startsWith().
func (p *parser) predicate() (Expr, error) {
	pos := p.tok.pos
	if err := p.countPred(pos); err != nil {
		return nil, err
	}
	if p.tok.kind == tIdent && p.tok.text == "has" {
		if p.lex.peekByte() == '(' {
			return p.has()
		}
	}
	if p.isLiteral() {
		v := p.literal()
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch p.tok.kind {
		case tOp:
			op := p.tok.op
			opPos := p.tok.pos
			if err := p.advance(); err != nil {
				return nil, err
			}
			path, err := p.path()
			if err != nil {
				return nil, err
			}
			return cmp(path, op.flip(), v, opPos)
		case tIdent:
			if p.tok.text == "in" {
				if err := p.advance(); err != nil {
					return nil, err
				}
				path, err := p.path()
				if err != nil {
					return nil, err
				}
				return Contains{Path: path, Value: v}, nil
			}
		}
		return nil, p.unexpected("a comparison operator or in after a value")
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	switch {
	case p.tok.kind == tOp:
		op := p.tok.op
		opPos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		if !p.isLiteral() {
			if p.tok.kind == tIdent {
				return nil, errAt(p.tok.pos, "a field can only be compared with a value, not with the field %s", p.tok.describe())
			}
			return nil, p.unexpected(`a value (a "string", a number, true, false or null)`)
		}
		v := p.literal()
		if err := p.advance(); err != nil {
			return nil, err
		}
		return cmp(path, op, v, opPos)
	case p.tok.kind == tIdent && p.tok.text == "in":
		return p.inList(path)
	case p.tok.kind == tDot:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tIdent || p.tok.text != "startsWith" {
			return nil, p.unexpected("startsWith")
		}
		return p.startsWith(path)
	}
	return nil, p.unexpected(fmt.Sprintf("a comparison (==, !=, <, <=, >, >=) or in after %s", pathString(path)))
}

// peekByte returns the next non-blank byte of the source, or 0.
func (l *lexer) peekByte() byte {
	for i := l.pos; i < len(l.src); i++ {
		if c := l.src[i]; strings.IndexByte(" \t\r\n", c) < 0 {
			return c
		}
	}
	return 0
}

func cmp(path []string, op Op, v any, opPos int) (Expr, error) {
	if op != OpEq && op != OpNe {
		switch v.(type) {
		case nil:
			return nil, errAt(opPos, "null compares only with == and !=")
		case bool:
			return nil, errAt(opPos, "true and false compare only with == and !=")
		}
	}
	return Cmp{Path: path, Op: op, Value: v}, nil
}

func (p *parser) isLiteral() bool {
	switch p.tok.kind {
	case tString, tInt, tFloat:
		return true
	case tIdent:
		switch p.tok.text {
		case "true", "false", "null":
			return true
		}
	}
	return false
}

func (p *parser) literal() any {
	switch p.tok.kind {
	case tString:
		return p.tok.str
	case tInt:
		return p.tok.i
	case tFloat:
		return p.tok.f
	}
	switch p.tok.text {
	case "true":
		return true
	case "false":
		return false
	}
	return nil
}

// path parses ident(.ident)*, stopping before .startsWith(.
func (p *parser) path() ([]string, error) {
	if p.tok.kind != tIdent || isReserved(p.tok.text) {
		return nil, p.unexpected("a field name")
	}
	start := p.tok.pos
	path := []string{p.tok.text}
	if err := p.advance(); err != nil {
		return nil, err
	}
	for p.tok.kind == tDot {
		if rest := p.lex.src[p.lex.pos:]; strings.HasPrefix(rest, "startsWith") &&
			(len(rest) == len("startsWith") || !isIdentByte(rest[len("startsWith")])) {
			save := p.lex.pos
			p.lex.pos += len("startsWith")
			next := p.lex.peekByte()
			p.lex.pos = save
			if next == '(' {
				break // the method, not a field named startsWith
			}
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tIdent {
			return nil, p.unexpected("a field name after \".\"")
		}
		path = append(path, p.tok.text)
		if len(path) > MaxPathLen {
			return nil, errAt(start, "field path has more than %d parts", MaxPathLen)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	return path, nil
}

func isReserved(s string) bool {
	switch s {
	case "true", "false", "null", "in":
		return true
	}
	return false
}

func (p *parser) inList(path []string) (Expr, error) {
	if err := p.advance(); err != nil { // in
		return nil, err
	}
	if p.tok.kind != tLBrack {
		return nil, p.unexpected(`"[" to start a list of values`)
	}
	start := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	values := []any{}
	for p.tok.kind != tRBrack {
		if len(values) > 0 {
			if p.tok.kind != tComma {
				return nil, p.unexpected(`"," or "]"`)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if !p.isLiteral() {
			return nil, p.unexpected("a value in the list")
		}
		if len(values) == MaxInList {
			return nil, errAt(start, "list has more than %d values", MaxInList)
		}
		values = append(values, p.literal())
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if err := p.advance(); err != nil { // ]
		return nil, err
	}
	return In{Path: path, Values: values}, nil
}

func (p *parser) startsWith(path []string) (Expr, error) {
	if err := p.advance(); err != nil { // startsWith
		return nil, err
	}
	if p.tok.kind != tLParen {
		return nil, p.unexpected(`"("`)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tString {
		return nil, p.unexpected(`a "string" prefix`)
	}
	prefix := p.tok.str
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tRParen {
		return nil, p.unexpected(`")"`)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return StartsWith{Path: path, Prefix: prefix}, nil
}

func (p *parser) has() (Expr, error) {
	if err := p.advance(); err != nil { // has
		return nil, err
	}
	if err := p.advance(); err != nil { // (
		return nil, err
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tRParen {
		return nil, p.unexpected(`")"`)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return Has{Path: path}, nil
}
