package docsql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	// Test-only: the stores own their drivers; these tests run the compiled
	// SQL on real databases through database/sql. The pgx driver is the one
	// store/postgres uses (same module, no new dependency).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/hostless/hostless/internal/baas/docdb/filter"
)

// fixture documents: id -> data. Types are mixed on purpose.
var fixture = []struct{ id, data string }{
	{"d01", `{"status":"open","priority":3,"owner":"u1","tags":["x","y"],"address":{"city":"Lyon"},"name":"Jo"}`},
	{"d02", `{"status":"open","priority":5.0,"owner":"u2","tags":["y"],"address":{"city":"Oslo"},"name":"Joë"}`},
	{"d03", `{"status":"closed","priority":"5","owner":"u1","tags":"x","name":"Zoë 東京"}`},
	{"d04", `{"status":"open","priority":true,"owner":null,"tags":[],"address":{"city":null},"name":"x' OR 1=1 --"}`},
	{"d05", `{"status":"open","priority":1,"tags":["x",5,true,null],"address":"Lyon","name":"quote \"q\" back\\slash"}`},
	{"d06", `{"priority":null,"status":"Open","tags":[["x"]],"name":"😀 emoji"}`},
	{"d07", `{"status":"closed","priority":-2.5,"owner":"u3","address":{"city":"lyon"},"name":"jo"}`},
	{"d08", `{"status":"open","priority":5,"owner":"u1","tags":["x"],"name":"Joseph","n":{"a":{"b":{"c":1}}}}`},
	{"d09", `{"status":["open"],"priority":{"v":3},"name":5}`},
	{"d10", `{}`},
}

// created and updated times; some tie, to exercise the id tie-breaker.
func created(i int) string { return fmt.Sprintf("2026-01-02T03:04:%02d.000000Z", 10-i/2) }
func updated(i int) string { return fmt.Sprintf("2026-02-01T00:00:%02d.000000Z", i%3) }

type testDB struct {
	d  Dialect
	db *sql.DB
}

// scope is the test's own condition, project and collection, as $1 and $2.
func (tdb testDB) scope() string {
	return "project = " + tdb.d.Placeholder(1) + " AND collection = " + tdb.d.Placeholder(2)
}

// forEachDB runs fn on SQLite and, when HOSTLESS_TEST_POSTGRES is set, on
// PostgreSQL, each holding the fixture.
func forEachDB(t *testing.T, fn func(t *testing.T, tdb testDB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func openSQLite(t testing.TB) testDB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "docs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tdb := testDB{SQLite, db}
	load(t, tdb, `CREATE TABLE docs (
		project TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
		version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
		PRIMARY KEY (project, collection, id))`)
	return tdb
}

// openPostgres opens a new schema on the test server, dropped when the
// test ends (as store/postgres's tests do).
func openPostgres(t testing.TB) testDB {
	t.Helper()
	base := os.Getenv("HOSTLESS_TEST_POSTGRES")
	if base == "" {
		t.Skip("HOSTLESS_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "hl_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	qs := u.Query()
	qs.Set("search_path", schema)
	u.RawQuery = qs.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tdb := testDB{Postgres, db}
	load(t, tdb, `CREATE TABLE docs (
		project text NOT NULL, collection text NOT NULL, id text COLLATE "C" NOT NULL, data jsonb NOT NULL,
		version integer NOT NULL, created_at text COLLATE "C" NOT NULL, updated_at text COLLATE "C" NOT NULL,
		PRIMARY KEY (project, collection, id))`)
	return tdb
}

// load creates the table and inserts the fixture into project p,
// collection c, and a decoy copy into another collection.
func load(t testing.TB, tdb testDB, ddl string) {
	t.Helper()
	if _, err := tdb.db.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	ph := make([]string, 7)
	for i := range ph {
		ph[i] = tdb.d.Placeholder(i + 1)
	}
	ins := `INSERT INTO docs (project, collection, id, data, version, created_at, updated_at) VALUES (` + strings.Join(ph, ", ") + `)`
	for i, f := range fixture {
		for _, coll := range []string{"c", "other"} {
			if _, err := tdb.db.Exec(ins, "p", coll, f.id, f.data, 1, created(i), updated(i)); err != nil {
				t.Fatalf("insert %s: %v", f.id, err)
			}
		}
	}
}

// ids runs SELECT id ... WHERE scope AND where ORDER BY order LIMIT limit.
func (tdb testDB) ids(t testing.TB, where string, args []any, order string, limit int) []string {
	t.Helper()
	q := `SELECT id FROM docs WHERE ` + tdb.scope() + ` AND ` + where + ` ORDER BY ` + order
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := tdb.db.Query(q, append([]any{"p", "c"}, args...)...)
	if err != nil {
		t.Fatalf("%s\n%v: %v", q, args, err)
	}
	defer rows.Close()
	got := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func ids(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

const all = "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10"

var filterTests = []struct {
	name   string
	filter string
	want   string // ids in id order
}{
	{name: "no filter", filter: "", want: all},
	{name: "string eq", filter: `status == "open"`, want: "d01 d02 d04 d05 d08"},
	{name: "string eq is case sensitive", filter: `status == "Open"`, want: "d06"},
	{name: "number eq int", filter: `priority == 5`, want: "d02 d08"},
	{name: "number eq float", filter: `priority == 5.0`, want: "d02 d08"},
	{name: "string five is not number five", filter: `priority == "5"`, want: "d03"},
	{name: "true is not 1", filter: `priority == 1`, want: "d05"},
	{name: "bool eq", filter: `priority == true`, want: "d04"},
	{name: "bool false matches nothing", filter: `priority == false`, want: ""},
	{name: "number gt skips other types", filter: `priority > 2`, want: "d01 d02 d08"},
	{name: "number le", filter: `priority <= 1`, want: "d05 d07"},
	{name: "number range", filter: `priority >= -2.5 && priority < 3`, want: "d05 d07"},
	{name: "ne is not eq", filter: `priority != 5`, want: "d01 d03 d04 d05 d06 d07 d09 d10"},
	{name: "eq null is null or missing", filter: `priority == null`, want: "d06 d10"},
	{name: "ne null", filter: `priority != null`, want: "d01 d02 d03 d04 d05 d07 d08 d09"},
	{name: "has", filter: `has(owner)`, want: "d01 d02 d03 d07 d08"},
	{name: "not has", filter: `!has(owner)`, want: "d04 d05 d06 d09 d10"},
	{name: "owner null", filter: `owner == null`, want: "d04 d05 d06 d09 d10"},
	{name: "double negation", filter: `!(!(has(owner)))`, want: "d01 d02 d03 d07 d08"},
	{name: "nested eq", filter: `address.city == "Lyon"`, want: "d01"},
	{name: "nested null through a string", filter: `address.city == null`, want: "d03 d04 d05 d06 d08 d09 d10"},
	{name: "nested has", filter: `has(address.city)`, want: "d01 d02 d07"},
	{name: "string range is byte order", filter: `address.city < "a"`, want: "d01 d02"},
	{name: "string gt unicode", filter: `name > "Zoë"`, want: "d03 d04 d05 d06 d07"},
	{name: "deep path", filter: `n.a.b.c == 1`, want: "d08"},
	{name: "deep path through a number", filter: `n.a.b.c.d == null`, want: all},
	{name: "array text is not a string", filter: `status == "[\"open\"]"`, want: ""},
	{name: "object is not ordered", filter: `priority >= 0 || priority < 0`, want: "d01 d02 d05 d07 d08"},
	{name: "number name", filter: `name == 5`, want: "d09"},
	{name: "contains string", filter: `"x" in tags`, want: "d01 d05 d08"},
	{name: "contains number", filter: `5.0 in tags`, want: "d05"},
	{name: "contains true", filter: `true in tags`, want: "d05"},
	{name: "contains null", filter: `null in tags`, want: "d05"},
	{name: "contains misses", filter: `"z" in tags`, want: ""},
	{name: "in strings", filter: `status in ["closed", "Open"]`, want: "d03 d06 d07"},
	{name: "in mixed types", filter: `priority in [5, "5"]`, want: "d02 d03 d08"},
	{name: "in bool and null", filter: `priority in [true, null]`, want: "d04 d06 d10"},
	{name: "in false", filter: `priority in [false, -2.5]`, want: "d07"},
	{name: "in empty", filter: `owner in []`, want: ""},
	{name: "not in", filter: `!(owner in ["u1", null])`, want: "d02 d07"},
	{name: "startsWith", filter: `name.startsWith("Jo")`, want: "d01 d02 d08"},
	{name: "startsWith unicode", filter: `name.startsWith("Zoë 東")`, want: "d03"},
	{name: "startsWith empty", filter: `name.startsWith("")`, want: "d01 d02 d03 d04 d05 d06 d07 d08"},
	{name: "startsWith wildcards are literal", filter: `name.startsWith("J%")`, want: ""},
	{name: "injection is a string", filter: `name == "x' OR 1=1 --"`, want: "d04"},
	{name: "quotes and backslash", filter: `name == "quote \"q\" back\\slash"`, want: "d05"},
	{name: "unicode escapes", filter: `name == "Zo\u00eb \u6771\u4eac"`, want: "d03"},
	{name: "emoji", filter: `name == "😀 emoji"`, want: "d06"},
	{name: "brief example", filter: `status == "open" && priority > 2 && (owner == "u1" || "x" in tags)`, want: "d01 d08"},
	{name: "or of not", filter: `!(status == "open") || priority < 0`, want: "d03 d06 d07 d09 d10"},
	{name: "id column", filter: `id == "d03"`, want: "d03"},
	{name: "id range", filter: `id > "d08"`, want: "d09 d10"},
	{name: "id in", filter: `id in ["d01", "d02", 3, null]`, want: "d01 d02"},
	{name: "id number", filter: `id == 3`, want: ""},
	{name: "id ne number", filter: `id != 3`, want: all},
	{name: "id null", filter: `id == null`, want: ""},
	{name: "id startsWith", filter: `id.startsWith("d1")`, want: "d10"},
	{name: "has created_at", filter: `has(created_at)`, want: all},
	{name: "created_at range", filter: `created_at >= "2026-01-02T03:04:09"`, want: "d01 d02 d03 d04"},
	{name: "not contains column", filter: `!("x" in id)`, want: all},
}

// TestCompileRuns runs each filter on both stores: same, expected ids.
func TestCompileRuns(t *testing.T) {
	forEachDB(t, func(t *testing.T, tdb testDB) {
		for _, tt := range filterTests {
			t.Run(tt.name, func(t *testing.T) {
				e, err := filter.Parse(tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				where, args, err := Compile(tdb.d, e, 2)
				if err != nil {
					t.Fatal(err)
				}
				got := tdb.ids(t, where, args, "id", 0)
				if want := ids(tt.want); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s\nWHERE %s %v\ngot  %v\nwant %v", tt.filter, where, args, got, want)
				}
			})
		}
	})
}

// TestAccessRuleTerms: terms ANDed on in Go compile as parsed ones do.
func TestAccessRuleTerms(t *testing.T) {
	forEachDB(t, func(t *testing.T, tdb testDB) {
		user, err := filter.Parse(`status == "open"`)
		if err != nil {
			t.Fatal(err)
		}
		e := filter.And(user, filter.Eq([]string{"owner"}, "u1"))
		e = filter.And(e, filter.Eq([]string{"priority"}, 5)) // a Go int
		where, args, err := Compile(tdb.d, e, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := tdb.ids(t, where, args, "id", 0); !reflect.DeepEqual(got, ids("d08")) {
			t.Fatalf("got %v", got)
		}
	})
}

var sortTests = []struct {
	name string
	sort string
	want string // the expected order, when written down
}{
	{name: "default", sort: "", want: all},
	{name: "priority", sort: "priority", want: "d06 d10 d07 d05 d01 d02 d08 d03 d04 d09"},
	{name: "-priority", sort: "-priority", want: "d09 d04 d03 d02 d08 d01 d05 d07 d06 d10"},
	{name: "name", sort: "name", want: "d10 d09 d01 d08 d02 d03 d07 d05 d04 d06"},
	{name: "-name", sort: "-name"},
	{name: "status,-priority", sort: "status,-priority"},
	{name: "-address.city,-created_at", sort: "-address.city,-created_at"},
	{name: "-id", sort: "-id", want: "d10 d09 d08 d07 d06 d05 d04 d03 d02 d01"},
	{name: "created_at", sort: "created_at", want: "d09 d10 d07 d08 d05 d06 d03 d04 d01 d02"},
	{name: "-updated_at,name", sort: "-updated_at,name"},
	{name: "tags,owner", sort: "tags,owner"},
	{name: "four keys", sort: "-tags,status,priority,-owner"},
}

// TestPaging pages through every sort by 2 on both stores: each document
// once, in the order of the whole listing, the same order on both stores.
func TestPaging(t *testing.T) {
	orders := map[string][]string{} // sort -> order seen on SQLite
	forEachDB(t, func(t *testing.T, tdb testDB) {
		for _, tt := range sortTests {
			t.Run(tt.name, func(t *testing.T) {
				keys, err := filter.ParseSort(tt.sort)
				if err != nil {
					t.Fatal(err)
				}
				order, err := OrderBy(tdb.d, keys)
				if err != nil {
					t.Fatal(err)
				}
				whole := tdb.ids(t, "TRUE", nil, order, 0)
				if tt.want != "" && !reflect.DeepEqual(whole, ids(tt.want)) {
					t.Fatalf("ORDER BY %s\ngot  %v\nwant %v", order, whole, ids(tt.want))
				}
				if tdb.d == SQLite {
					orders[tt.sort] = whole
				} else if prev, ok := orders[tt.sort]; ok && !reflect.DeepEqual(whole, prev) {
					t.Fatalf("order differs from SQLite's\npostgres %v\nsqlite   %v", whole, prev)
				}
				var paged []string
				where, args := "TRUE", []any(nil)
				for page := 0; ; page++ {
					if page > len(fixture) {
						t.Fatalf("more than %d pages: %v", page, paged)
					}
					got := tdb.ids(t, where, args, order, 2)
					paged = append(paged, got...)
					if len(got) < 2 {
						break
					}
					last := got[len(got)-1]
					token := cursorOf(t, keys, last)
					cur, err := DecodeCursor(keys, token)
					if err != nil {
						t.Fatal(err)
					}
					if where, args, err = After(tdb.d, keys, cur, 2); err != nil {
						t.Fatal(err)
					}
				}
				if !reflect.DeepEqual(paged, whole) {
					t.Fatalf("pages of 2 visit %v\nwhole listing is %v", paged, whole)
				}
			})
		}
	})
}

// cursorOf encodes the cursor of the fixture document id.
func cursorOf(t *testing.T, keys []filter.SortKey, id string) string {
	t.Helper()
	for i, f := range fixture {
		if f.id == id {
			c, err := NewCursor(keys, []byte(f.data), f.id, created(i), updated(i))
			if err != nil {
				t.Fatal(err)
			}
			s, err := EncodeCursor(keys, c)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("no document %s", id)
	return ""
}

// TestIndexUsed: an equality on an indexed field uses the index built on
// IndexExpr, on both stores.
func TestIndexUsed(t *testing.T) {
	forEachDB(t, func(t *testing.T, tdb testDB) {
		for _, f := range []string{"status", "priority"} {
			expr, err := IndexExpr(tdb.d, []string{f})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tdb.db.Exec(`CREATE INDEX docs_` + f + ` ON docs (project, collection, ` + expr + `)`); err != nil {
				t.Fatal(err)
			}
		}
		// Filler rows, so that the planner's statistics make the indexed
		// terms selective.
		if _, err := tdb.db.Exec(`WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 2000)
			INSERT INTO docs (project, collection, id, data, version, created_at, updated_at)
			SELECT 'p', 'c', 'f' || n, '{"status":"filler","priority":0}', 1, '', '' FROM g`); err != nil {
			t.Fatal(err)
		}
		if _, err := tdb.db.Exec(`ANALYZE`); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			filter string
			field  string
			index  string
		}{
			{name: "string eq", filter: `status == "open"`, field: "status", index: "docs_status"},
			{name: "number eq", filter: `priority == 5`, field: "priority", index: "docs_priority"},
			{name: "bool eq", filter: `priority == true`, field: "priority", index: "docs_priority"},
			{name: "in", filter: `status in ["Open", "closed"]`, field: "status", index: "docs_status"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e, err := filter.Parse(tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				where, args, err := Compile(tdb.d, e, 2)
				if err != nil {
					t.Fatal(err)
				}
				plan := tdb.explain(t, `SELECT id FROM docs WHERE `+tdb.scope()+` AND `+where, append([]any{"p", "c"}, args...))
				// The index must serve the field's term, not only its
				// (project, collection) prefix.
				used := "USING INDEX " + tt.index + " (project=? AND collection=? AND <expr>=?)"
				if tdb.d == Postgres {
					used = "Index Cond: ((project = 'p'::text) AND (collection = 'c'::text) AND ((data -> '" + tt.field + "'::text) ="
				}
				if !strings.Contains(plan, tt.index) || !strings.Contains(plan, used) {
					t.Fatalf("WHERE %s\nplan does not use %s for %s:\n%s", where, tt.index, tt.field, plan)
				}
			})
		}
	})
}

// explain returns the query plan as text. PostgreSQL's tiny fixture table
// would be read sequentially whatever the indexes: seqscans are disabled
// to see whether the index can serve the query at all.
func (tdb testDB) explain(t *testing.T, q string, args []any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := tdb.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prefix := "EXPLAIN QUERY PLAN "
	if tdb.d == Postgres {
		prefix = "EXPLAIN "
		if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, `RESET enable_seqscan`)
	}
	rows, err := conn.QueryContext(ctx, prefix+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
