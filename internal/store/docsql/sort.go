package docsql

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
)

// Sorting on a field of data orders documents first by the JSON type of
// the field's value, then by the value within the type, the same on both
// stores:
//
//	rank 0  null or missing      (ties)
//	rank 1  numbers              numerically
//	rank 2  strings              by bytes (COLLATE "C" in PostgreSQL)
//	rank 3  booleans             false < true
//	rank 4  arrays and objects   (ties)
//
// So null and missing values come first in ascending order and last in
// descending order, and ties are broken by id, ascending. Sorting a field
// whose values have mixed JSON types is only meaningful within one type;
// the ranks just make the order total and identical on both stores, so
// that keyset pagination visits every document once. The rank and value
// are CASE expressions, which no index serves: sorts on JSON fields read
// the collection's matching rows (filter first). id, created_at and
// updated_at sort as their columns.

const (
	rankNull = iota
	rankNumber
	rankString
	rankBool
	rankComposite
)

// rankOf is the rank of a cursor value.
func rankOf(v any) int {
	switch v.(type) {
	case nil:
		return rankNull
	case int64, float64:
		return rankNumber
	case string:
		return rankString
	case bool:
		return rankBool
	}
	return rankComposite
}

func rankExpr(d Dialect, path []string) string {
	if d == SQLite {
		return "(CASE " + sqliteType(path) + " WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2" +
			" WHEN 'true' THEN 3 WHEN 'false' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END)"
	}
	return "(CASE " + pgTypeof(path) + " WHEN 'number' THEN 1 WHEN 'string' THEN 2" +
		" WHEN 'boolean' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END)"
}

// orderExprs are the expressions ordering documents within a rank: NULL
// for ranks 0 and 4, one typed value otherwise.
func orderExprs(d Dialect, path []string) []string {
	if d == SQLite {
		// One column holds every type; within a rank there is only one.
		return []string{"(CASE WHEN " + sqliteType(path) + " IN ('array', 'object') THEN NULL ELSE " + jsonExpr(d, path) + " END)"}
	}
	return []string{
		"(CASE WHEN " + pgTypeof(path) + " IN ('number', 'boolean') THEN " + jsonExpr(d, path) + " END)",
		"(CASE WHEN " + pgTypeof(path) + " = 'string' THEN " + pgText(path) + ` END) COLLATE "C"`,
	}
}

// sortRefs resolves the keys and says whether id is among them.
func sortRefs(keys []filter.SortKey) ([]ref, bool, error) {
	if len(keys) > filter.MaxSortKeys {
		return nil, false, fmt.Errorf("sort has more than %d keys", filter.MaxSortKeys)
	}
	refs := make([]ref, len(keys))
	hasID := false
	for i, k := range keys {
		r, err := resolve(k.Path)
		if err != nil {
			return nil, false, err
		}
		refs[i] = r
		hasID = hasID || r.col == "id"
	}
	return refs, hasID, nil
}

// OrderBy returns the ORDER BY list (without the keywords) for keys,
// ending with id as the tie-breaker unless a key is id.
func OrderBy(d Dialect, keys []filter.SortKey) (string, error) {
	if err := checkDialect(d); err != nil {
		return "", err
	}
	refs, hasID, err := sortRefs(keys)
	if err != nil {
		return "", err
	}
	c := &compiler{d: d}
	var parts []string
	for i, r := range refs {
		dir := " ASC"
		if keys[i].Desc {
			dir = " DESC"
		}
		if r.col != "" {
			parts = append(parts, c.column(r.col)+dir)
			continue
		}
		parts = append(parts, rankExpr(d, r.path)+dir)
		for _, e := range orderExprs(d, r.path) {
			parts = append(parts, e+dir)
		}
	}
	if !hasID {
		parts = append(parts, c.column("id")+" ASC")
	}
	return strings.Join(parts, ", "), nil
}

// After returns a condition selecting the rows strictly after last in the
// order of OrderBy(d, keys), with its arguments numbered from argBase+1:
// the next page of a keyset pagination. last must come from NewCursor or
// DecodeCursor with the same keys.
func After(d Dialect, keys []filter.SortKey, last Cursor, argBase int) (where string, args []any, err error) {
	if err := checkDialect(d); err != nil {
		return "", nil, err
	}
	refs, hasID, err := sortRefs(keys)
	if err != nil {
		return "", nil, err
	}
	if len(last.Values) != len(keys) {
		return "", nil, fmt.Errorf("cursor has %d values for %d sort keys", len(last.Values), len(keys))
	}
	if !hasID {
		refs = append(refs, ref{col: "id"})
		keys = append(keys[:len(keys):len(keys)], filter.SortKey{Path: []string{"id"}})
	}
	c := &compiler{d: d, base: argBase}
	// The rows after (k1, ..., kn) are those after on k1, or equal on k1
	// and after on k2, and so on.
	var ors []string
	for i := range refs {
		var ands []string
		for j := 0; j < i; j++ {
			eq, err := c.keyCmp(refs[j], valueAt(last, j), false, false)
			if err != nil {
				return "", nil, err
			}
			ands = append(ands, eq)
		}
		gt, err := c.keyCmp(refs[i], valueAt(last, i), true, keys[i].Desc)
		if err != nil {
			return "", nil, err
		}
		ands = append(ands, gt)
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + strings.Join(ors, " OR ") + ")", c.args, nil
}

// valueAt is the cursor's value of key i; past the values, the id.
func valueAt(last Cursor, i int) any {
	if i < len(last.Values) {
		return last.Values[i]
	}
	return last.ID
}

// keyCmp compiles "the row's key equals v" or, with after, "the row's key
// comes after v" (greater, or less when desc).
func (c *compiler) keyCmp(r ref, v any, after, desc bool) (string, error) {
	op := "="
	if after {
		op = ">"
		if desc {
			op = "<"
		}
	}
	if r.col != "" {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("cursor value of %s is %T, not a string", r.col, v)
		}
		if op == "=" {
			return r.col + " = " + c.arg(s), nil
		}
		return c.column(r.col) + " " + op + " " + c.arg(s), nil
	}
	rank := rankOf(v)
	if rank == rankNumber || rank == rankString {
		if _, err := kindOf(v); err != nil {
			return "", err
		}
	}
	// Arguments are bound in the order of the text: SQLite's ? are
	// positional.
	rx := rankExpr(c.d, r.path)
	rankCmp := rx + " " + op + " " + c.arg(int64(rank))
	if rank == rankNull || rank == rankComposite {
		return rankCmp, nil // ties within the rank
	}
	val := func(op string) string {
		switch {
		case c.d == SQLite:
			return jsonExpr(SQLite, r.path) + " " + op + " " + c.arg(sqliteArg(v))
		case rank == rankString:
			return pgText(r.path) + ` COLLATE "C" ` + op + " " + c.arg(v)
		}
		return jsonExpr(Postgres, r.path) + " " + op + " " + c.jsonArg(v)
	}
	if op == "=" {
		return rankCmp + " AND " + val(op), nil
	}
	sameRank := rx + " = " + c.arg(int64(rank))
	return "(" + rankCmp + " OR (" + sameRank + " AND " + val(op) + "))", nil
}

// Cursor is the position after which the next page starts: the sort
// values and the id of the last row of a page. Values are nil, int64,
// float64, string, bool, or map[string]any{} for any array or object
// (they sort as ties).
type Cursor struct {
	Values []any
	ID     string
}

// MaxCursor bounds an encoded cursor, outside input. A sort value longer
// than fits (a string of about 10 KiB) can't be paged past: NewCursor
// fails.
const MaxCursor = 16 << 10

// NewCursor returns the cursor of a row: data is its JSON object, the
// others its columns.
func NewCursor(keys []filter.SortKey, data []byte, id, createdAt, updatedAt string) (Cursor, error) {
	refs, _, err := sortRefs(keys)
	if err != nil {
		return Cursor{}, err
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return Cursor{}, fmt.Errorf("cursor: document: %w", err)
	}
	cols := map[string]string{"id": id, "created_at": createdAt, "updated_at": updatedAt}
	c := Cursor{ID: id, Values: make([]any, len(refs))}
	for i, r := range refs {
		if r.col != "" {
			c.Values[i] = cols[r.col]
			continue
		}
		v := doc
		for _, seg := range r.path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[seg]
		}
		if c.Values[i], err = cursorValue(v); err != nil {
			return Cursor{}, fmt.Errorf("cursor: %s: %w", filter.SortString(keys[i:i+1]), err)
		}
	}
	return c, nil
}

// cursorValue normalizes a decoded JSON value (numbers as json.Number).
func cursorValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s is out of range", s)
		}
		return f, nil
	case map[string]any, []any:
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("unexpected %T", v)
}

// cursorJSON is the encoded form. Sort names the sort the cursor belongs
// to, so that a cursor isn't used with another one.
type cursorJSON struct {
	Sort   string            `json:"s"`
	Values []json.RawMessage `json:"v"`
	ID     string            `json:"id"`
}

// EncodeCursor returns c as an opaque token for the keys it belongs to:
// base64url of JSON. It is not signed: a client that edits one can only
// move its own position in a listing it may read anyway (filters and
// access rules still apply), and DecodeCursor checks what it reads.
func EncodeCursor(keys []filter.SortKey, c Cursor) (string, error) {
	vals := make([]json.RawMessage, len(c.Values))
	for i, v := range c.Values {
		if _, err := kindOfCursor(v); err != nil {
			return "", fmt.Errorf("encode cursor: %w", err)
		}
		if rankOf(v) == rankComposite {
			vals[i] = json.RawMessage("{}") // arrays and objects tie: no content needed
			continue
		}
		// Literal keeps 5.0 a float, where encoding/json writes 5.
		vals[i] = json.RawMessage(filter.Literal(v))
	}
	if rankOf(c.ID) != rankString {
		return "", fmt.Errorf("encode cursor: no id")
	}
	b, err := json.Marshal(cursorJSON{Sort: filter.SortString(keys), Values: vals, ID: c.ID})
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	if len(s) > MaxCursor {
		return "", fmt.Errorf("encode cursor: the sort values of %q are too long to page past (cursor of %d bytes, at most %d)", c.ID, len(s), MaxCursor)
	}
	return s, nil
}

// ErrCursor is a cursor that doesn't decode or belongs to another sort.
var ErrCursor = errors.New("invalid cursor: pass the cursor of the previous page unchanged, with the same sort, or start again without one")

// DecodeCursor decodes a cursor from EncodeCursor with the same keys. The
// token is outside input: errors wrap ErrCursor.
func DecodeCursor(keys []filter.SortKey, s string) (Cursor, error) {
	fail := func(why string) (Cursor, error) { return Cursor{}, fmt.Errorf("%w (%s)", ErrCursor, why) }
	if len(s) > MaxCursor {
		return fail("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return fail("not base64url")
	}
	var cj struct {
		Sort   *string           `json:"s"`
		Values []json.RawMessage `json:"v"`
		ID     *string           `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil || dec.More() {
		return fail("not a cursor")
	}
	if cj.Sort == nil || cj.ID == nil {
		return fail("not a cursor")
	}
	if _, err := kindOf(*cj.ID); err != nil {
		return fail("bad id")
	}
	if *cj.Sort != filter.SortString(keys) {
		return fail("made for another sort")
	}
	if len(cj.Values) != len(keys) {
		return fail("wrong number of values")
	}
	refs, _, err := sortRefs(keys)
	if err != nil {
		return Cursor{}, err
	}
	c := Cursor{ID: *cj.ID, Values: make([]any, len(keys))}
	for i, raw := range cj.Values {
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return fail("bad value")
		}
		if c.Values[i], err = cursorValue(v); err != nil {
			return fail("bad value")
		}
		if _, isStr := c.Values[i].(string); refs[i].col != "" && !isStr {
			return fail("bad value")
		}
		if _, err := kindOfCursor(c.Values[i]); err != nil {
			return fail("bad value")
		}
	}
	return c, nil
}

// kindOfCursor checks a cursor value as kindOf does literals, letting
// arrays and objects through.
func kindOfCursor(v any) (kind, error) {
	if _, ok := v.(map[string]any); ok {
		return 0, nil
	}
	return kindOf(v)
}
