package filter

import (
	"reflect"
	"testing"
)

// FuzzParse: nothing panics, and what parses prints (String) to source
// that parses to the same AST. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(`status == "open" && priority > 2 && (owner == "u1" || "x" in tags)`)
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q): error %T is not *Error", src, err)
			}
			return
		}
		if e == nil {
			return
		}
		printed := e.String()
		again, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which fails: %v", src, printed, err)
		}
		if !reflect.DeepEqual(e, again) {
			t.Fatalf("Parse(%q) = %#v; printed %q parses to %#v", src, e, printed, again)
		}
		Fields(e)
	})
}
