// Package docsql compiles the document database's filters and sorts
// (internal/baas/docdb/filter) to parameterized SQL for the two stores,
// SQLite and PostgreSQL, with the same results on both. It builds SQL
// text and arguments only; it runs nothing and must never import net/http
// or a database driver.
//
// The stores keep documents in one table:
//
//	docs(project TEXT, collection TEXT, id TEXT, data <JSON>, version INTEGER,
//	     created_at TEXT, updated_at TEXT, PRIMARY KEY (project, collection, id))
//
// data is a JSON object of the user's fields: TEXT in SQLite, jsonb in
// PostgreSQL. The names id, created_at and updated_at in a filter or sort
// are those columns (strings; times in the fixed-width UTC format
// 2006-01-02T15:04:05.000000Z, so that they sort as strings); every other
// path is a field of data. In PostgreSQL the text columns should be
// declared COLLATE "C": the compiled SQL compares and sorts them with
// COLLATE "C" (byte order, as SQLite does), which an index on a column of
// another collation can't serve.
//
// # Semantics
//
// Comparisons are type-strict and the same on both stores:
//
//   - a == 5 matches a JSON number equal to 5 (5.0 too), never "5" or true;
//     a == "x" matches only the string "x", never an array or object whose
//     JSON text is x.
//   - <, <=, >, >= hold only between values of the same type (numbers
//     numerically, strings by bytes of UTF-8, which is code point order);
//     they are false for other types and for missing fields. Booleans and
//     null compare only with == and !=.
//   - a == null matches JSON null and a missing field; has(a) is its
//     negation.
//   - a != x is exactly !(a == x): true for missing fields and values of
//     other types. ! is two-valued: a compiled predicate is true or "not
//     true" (false or SQL NULL), and ! is compiled as IS NOT TRUE.
//   - a in [v, ...] is a == v || ...; v in a is true when a is an array
//     with a top-level element == v; a.startsWith(p) holds for strings only.
//   - A path through a non-object (a.b where a is a string or an array) is
//     missing.
//
// # Indexes
//
// An expression index serves a query only when the query has the indexed
// expression textually (SQLite) or structurally (PostgreSQL) identical, so
// the compiled SQL uses exactly IndexExpr(d, path) for == and in on a
// field, and for ranges on numbers:
//
//	SQLite:     json_extract(data, '$.address.city')
//	PostgreSQL: (data->'address'->'city')
//
// The store creates them as CREATE INDEX ... ON docs (project, collection,
// <IndexExpr>). JSON paths are therefore written into the SQL text, never
// bound: they are built only from segments that pass filter.ValidIdent
// ([A-Za-z_][A-Za-z0-9_]*), so they can't hold a quote. Every value is a
// bound parameter. Ranges on strings in PostgreSQL compare
// (data->>'f') COLLATE "C" and use no index; sorts on JSON fields use no
// index either (see OrderBy).
package docsql

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
)

// Dialect is the SQL flavour to compile to.
type Dialect uint8

// The dialects.
const (
	SQLite   Dialect = iota + 1 // ? placeholders, json_extract on TEXT
	Postgres                    // $n placeholders, jsonb operators
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// Placeholder returns the placeholder of the n-th argument (from 1): ? in
// SQLite, where arguments bind in order of appearance, and $n in
// PostgreSQL.
func (d Dialect) Placeholder(n int) string {
	if d == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// columns are the names that stand for a column, not a field of data.
var columns = map[string]bool{"id": true, "created_at": true, "updated_at": true}

// compiler accumulates the arguments of one SQL fragment.
type compiler struct {
	d    Dialect
	base int
	args []any
}

// arg binds v and returns its placeholder.
func (c *compiler) arg(v any) string {
	c.args = append(c.args, v)
	return c.d.Placeholder(c.base + len(c.args))
}

// jsonArg binds v as JSON text cast to jsonb (PostgreSQL only). The text
// cast fixes the parameter's type whatever the driver does with strings.
func (c *compiler) jsonArg(v any) string {
	b, _ := json.Marshal(v) // values are checked: string, int64, finite float64, bool, nil or []any of them
	return c.arg(string(b)) + "::text::jsonb"
}

// ref is where a path lives: a column, or a field of data.
type ref struct {
	col  string   // id, created_at or updated_at; else empty
	path []string // the field's path in data
}

func checkDialect(d Dialect) error {
	if d != SQLite && d != Postgres {
		return fmt.Errorf("docsql: unknown dialect %d", d)
	}
	return nil
}

// resolve checks a path and says what it refers to. Paths reach the SQL
// text, so this is the check that keeps them safe.
func resolve(path []string) (ref, error) {
	if len(path) == 0 || len(path) > filter.MaxPathLen {
		return ref{}, fmt.Errorf("field path %q must have 1 to %d parts", strings.Join(path, "."), filter.MaxPathLen)
	}
	for _, s := range path {
		if !filter.ValidIdent(s) {
			return ref{}, fmt.Errorf("%q is not a field name (letters, digits and _, not starting with a digit)", s)
		}
	}
	if columns[path[0]] {
		if len(path) > 1 {
			return ref{}, fmt.Errorf("%s is a string, so %s names nothing", path[0], strings.Join(path, "."))
		}
		return ref{col: path[0]}, nil
	}
	return ref{path: path}, nil
}

// IndexExpr returns the expression an index on a field must use for the
// compiled filters to use it: CREATE INDEX ... ON docs (project,
// collection, <expr>). For id, created_at and updated_at it is the column.
func IndexExpr(d Dialect, path []string) (string, error) {
	if err := checkDialect(d); err != nil {
		return "", err
	}
	r, err := resolve(path)
	if err != nil {
		return "", err
	}
	if r.col != "" {
		return r.col, nil
	}
	return jsonExpr(d, r.path), nil
}

// jsonExpr is the field as SQLite's json_extract (a SQL value: text,
// integer, real, 1/0 for booleans, NULL for null and missing, JSON text for
// arrays and objects) or PostgreSQL's jsonb (SQL NULL when missing).
func jsonExpr(d Dialect, path []string) string {
	if d == SQLite {
		return "json_extract(data, " + sqlitePath(path) + ")"
	}
	return "(data->'" + strings.Join(path, "'->'") + "')"
}

// sqlitePath is the path literal '$.a.b'; segments are identifiers.
func sqlitePath(path []string) string { return "'$." + strings.Join(path, ".") + "'" }

// sqliteType is json_type of the field: 'integer', 'real', 'text', 'true',
// 'false', 'null', 'array', 'object', or NULL when missing.
func sqliteType(path []string) string { return "json_type(data, " + sqlitePath(path) + ")" }

// pgText is the field as text (->>): the string itself for strings.
func pgText(path []string) string {
	if len(path) == 1 {
		return "(data->>'" + path[0] + "')"
	}
	return "(data->'" + strings.Join(path[:len(path)-1], "'->'") + "'->>'" + path[len(path)-1] + "')"
}

func pgTypeof(path []string) string { return "jsonb_typeof" + jsonExpr(Postgres, path) }

// kind is the JSON type of a literal.
type kind uint8

const (
	kNull kind = iota
	kNumber
	kString
	kBool
)

func kindOf(v any) (kind, error) {
	switch x := v.(type) {
	case nil:
		return kNull, nil
	case string:
		if strings.IndexByte(x, 0) >= 0 || !utf8.ValidString(x) {
			return 0, fmt.Errorf("string %q holds NUL or invalid UTF-8", x)
		}
		return kString, nil
	case int64:
		return kNumber, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return 0, fmt.Errorf("%v is not a finite number", x)
		}
		return kNumber, nil
	case bool:
		return kBool, nil
	}
	return 0, fmt.Errorf("unsupported value %v of type %T (want string, int64, float64, bool or nil)", v, v)
}

// sqliteArg is a value as SQLite's json_extract returns it: booleans are
// 1 and 0.
func sqliteArg(v any) any {
	if b, ok := v.(bool); ok {
		if b {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// Compile compiles e to a condition for a WHERE clause on the docs table
// and its arguments, numbered from argBase+1 in PostgreSQL (in SQLite,
// append them after argBase arguments). A nil e is TRUE.
func Compile(d Dialect, e filter.Expr, argBase int) (where string, args []any, err error) {
	if err := checkDialect(d); err != nil {
		return "", nil, err
	}
	c := &compiler{d: d, base: argBase}
	if e == nil {
		return "TRUE", nil, nil
	}
	var b strings.Builder
	if err := c.expr(&b, e); err != nil {
		return "", nil, fmt.Errorf("compile filter: %w", err)
	}
	return b.String(), c.args, nil
}

func (c *compiler) expr(b *strings.Builder, e filter.Expr) error {
	switch x := e.(type) {
	case filter.AndExpr:
		return c.join(b, x.Terms, " AND ")
	case filter.OrExpr:
		return c.join(b, x.Terms, " OR ")
	case filter.NotExpr:
		if x.X == nil {
			return fmt.Errorf("! of nothing")
		}
		b.WriteString("((")
		if err := c.expr(b, x.X); err != nil {
			return err
		}
		b.WriteString(") IS NOT TRUE)")
		return nil
	case filter.Cmp:
		return c.cmp(b, x)
	case filter.In:
		return c.in(b, x)
	case filter.Contains:
		return c.contains(b, x)
	case filter.StartsWith:
		return c.startsWith(b, x)
	case filter.Has:
		r, err := resolve(x.Path)
		if err != nil {
			return err
		}
		switch {
		case r.col != "":
			b.WriteString("TRUE")
		case c.d == SQLite:
			b.WriteString(jsonExpr(c.d, r.path) + " IS NOT NULL")
		default:
			b.WriteString(jsonExpr(c.d, r.path) + " <> 'null'::jsonb")
		}
		return nil
	case nil:
		return fmt.Errorf("empty term")
	}
	return fmt.Errorf("unsupported expression %T", e)
}

func (c *compiler) join(b *strings.Builder, terms []filter.Expr, sep string) error {
	if len(terms) == 0 {
		return fmt.Errorf("%s of no terms", strings.TrimSpace(sep))
	}
	b.WriteByte('(')
	for i, t := range terms {
		if i > 0 {
			b.WriteString(sep)
		}
		if err := c.expr(b, t); err != nil {
			return err
		}
	}
	b.WriteByte(')')
	return nil
}

var sqlOp = map[filter.Op]string{
	filter.OpEq: "=", filter.OpLt: "<", filter.OpLe: "<=", filter.OpGt: ">", filter.OpGe: ">=",
}

// cmp compiles path op value. != is compiled as !(==).
func (c *compiler) cmp(b *strings.Builder, x filter.Cmp) error {
	if x.Op == filter.OpNe {
		return c.expr(b, filter.NotExpr{X: filter.Cmp{Path: x.Path, Op: filter.OpEq, Value: x.Value}})
	}
	op, ok := sqlOp[x.Op]
	if !ok {
		return fmt.Errorf("unknown operator %v", x.Op)
	}
	r, err := resolve(x.Path)
	if err != nil {
		return err
	}
	k, err := kindOf(x.Value)
	if err != nil {
		return err
	}
	if x.Op != filter.OpEq && (k == kNull || k == kBool) {
		return fmt.Errorf("%s: %s compares only with == and !=", x, filter.Literal(x.Value))
	}
	if r.col != "" {
		// Columns are non-null strings.
		switch {
		case k != kString:
			b.WriteString("FALSE")
		case x.Op == filter.OpEq:
			b.WriteString(r.col + " = " + c.arg(x.Value))
		default:
			b.WriteString(c.column(r.col) + " " + op + " " + c.arg(x.Value))
		}
		return nil
	}
	p := r.path
	if c.d == SQLite {
		ext, typ := jsonExpr(SQLite, p), sqliteType(p)
		switch k {
		case kNull:
			b.WriteString(ext + " IS NULL")
		case kString:
			b.WriteString("(" + typ + " = 'text' AND " + ext + " " + op + " " + c.arg(x.Value) + ")")
		case kNumber:
			b.WriteString("(" + typ + " IN ('integer', 'real') AND " + ext + " " + op + " " + c.arg(x.Value) + ")")
		case kBool:
			b.WriteString("(" + ext + " = " + c.arg(sqliteArg(x.Value)) + " AND " + typ + " = '" + strconv.FormatBool(x.Value.(bool)) + "')")
		}
		return nil
	}
	j := jsonExpr(Postgres, p)
	switch {
	case k == kNull:
		b.WriteString("(" + j + " IS NULL OR " + j + " = 'null'::jsonb)")
	case x.Op == filter.OpEq:
		// jsonb equality is type-strict by itself: '5' = '5.0' but not '"5"'.
		b.WriteString(j + " = " + c.jsonArg(x.Value))
	case k == kNumber:
		b.WriteString("(" + pgTypeof(p) + " = 'number' AND " + j + " " + op + " " + c.jsonArg(x.Value) + ")")
	default: // string ranges: jsonb would compare in the database's collation
		b.WriteString("(" + pgTypeof(p) + " = 'string' AND " + pgText(p) + ` COLLATE "C" ` + op + " " + c.arg(x.Value) + ")")
	}
	return nil
}

// column is a text column for ordering comparisons: byte order on both.
func (c *compiler) column(col string) string {
	if c.d == Postgres {
		return col + ` COLLATE "C"`
	}
	return col
}

// in compiles path in [values]: the values grouped by type, each group in
// one index-friendly IN (...).
func (c *compiler) in(b *strings.Builder, x filter.In) error {
	r, err := resolve(x.Path)
	if err != nil {
		return err
	}
	var scalars []any // strings and numbers (SQLite); all but null (PostgreSQL)
	var bools []bool
	null := false
	for _, v := range x.Values {
		k, err := kindOf(v)
		if err != nil {
			return err
		}
		switch {
		case k == kNull:
			null = true
		case k == kBool && c.d == SQLite:
			bools = append(bools, v.(bool))
		case r.col != "" && k != kString:
			// A column is a string: other values never match.
		default:
			scalars = append(scalars, v)
		}
	}
	list := func(vs []any, conv func(any) string) string {
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = conv(v)
		}
		return "(" + strings.Join(ps, ", ") + ")"
	}
	var terms []string
	switch {
	case r.col != "":
		if len(scalars) > 0 {
			terms = append(terms, r.col+" IN "+list(scalars, c.arg))
		}
	case c.d == SQLite:
		ext, typ := jsonExpr(SQLite, r.path), sqliteType(r.path)
		if len(scalars) > 0 {
			// No affinity on either side: 5 and '5' stay unequal.
			terms = append(terms, "("+typ+" IN ('integer', 'real', 'text') AND "+ext+" IN "+list(scalars, c.arg)+")")
		}
		for _, v := range bools {
			terms = append(terms, "("+ext+" = "+c.arg(sqliteArg(v))+" AND "+typ+" = '"+strconv.FormatBool(v)+"')")
		}
		if null {
			terms = append(terms, ext+" IS NULL")
		}
	default:
		j := jsonExpr(Postgres, r.path)
		if len(scalars) > 0 {
			terms = append(terms, j+" IN "+list(scalars, c.jsonArg))
		}
		if null {
			terms = append(terms, "("+j+" IS NULL OR "+j+" = 'null'::jsonb)")
		}
	}
	switch len(terms) {
	case 0:
		b.WriteString("FALSE")
	case 1:
		b.WriteString(terms[0])
	default:
		b.WriteString("(" + strings.Join(terms, " OR ") + ")")
	}
	return nil
}

// contains compiles value in path: path is an array with a top-level
// element equal to value.
func (c *compiler) contains(b *strings.Builder, x filter.Contains) error {
	r, err := resolve(x.Path)
	if err != nil {
		return err
	}
	k, err := kindOf(x.Value)
	if err != nil {
		return err
	}
	if r.col != "" {
		b.WriteString("FALSE") // columns are strings, not arrays
		return nil
	}
	if c.d == Postgres {
		j := jsonExpr(Postgres, r.path)
		// An array contains [v] when an element equals v (numerically for
		// numbers); nested arrays don't count, as in json_each below.
		b.WriteString("(" + pgTypeof(r.path) + " = 'array' AND " + j + " @> " + c.jsonArg([]any{x.Value}) + ")")
		return nil
	}
	var cond string
	switch k {
	case kNull:
		cond = "type = 'null'"
	case kBool:
		cond = "type = '" + strconv.FormatBool(x.Value.(bool)) + "'"
	case kString:
		cond = "type = 'text' AND value = " + c.arg(x.Value)
	case kNumber:
		cond = "type IN ('integer', 'real') AND value = " + c.arg(x.Value)
	}
	// json_each of a scalar yields the scalar itself: hence the array check.
	b.WriteString("(" + sqliteType(r.path) + " = 'array' AND EXISTS (SELECT 1 FROM json_each(data, " +
		sqlitePath(r.path) + ") WHERE " + cond + "))")
	return nil
}

// startsWith compiles a prefix match on strings.
func (c *compiler) startsWith(b *strings.Builder, x filter.StartsWith) error {
	r, err := resolve(x.Path)
	if err != nil {
		return err
	}
	if _, err := kindOf(x.Prefix); err != nil {
		return err
	}
	if c.d == Postgres {
		if r.col != "" {
			b.WriteString("starts_with(" + r.col + ", " + c.arg(x.Prefix) + ")")
			return nil
		}
		b.WriteString("(" + pgTypeof(r.path) + " = 'string' AND starts_with(" + pgText(r.path) + ", " + c.arg(x.Prefix) + "))")
		return nil
	}
	// substr counts characters of TEXT; LIKE and GLOB would need escaping
	// and LIKE ignores ASCII case.
	n := int64(utf8.RuneCountInString(x.Prefix))
	if r.col != "" {
		b.WriteString("substr(" + r.col + ", 1, " + c.arg(n) + ") = " + c.arg(x.Prefix))
		return nil
	}
	b.WriteString("(" + sqliteType(r.path) + " = 'text' AND substr(" + jsonExpr(SQLite, r.path) + ", 1, " +
		c.arg(n) + ") = " + c.arg(x.Prefix) + ")")
	return nil
}
