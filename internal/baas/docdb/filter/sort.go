package filter

import "strings"

// MaxSortKeys bounds the keys of a sort.
const MaxSortKeys = 4

// SortKey is one key of a sort: a field path, ascending unless Desc.
type SortKey struct {
	Path []string
	Desc bool
}

// String returns the key as written in a sort: -a.b or a.b.
func (k SortKey) String() string {
	if k.Desc {
		return "-" + pathString(k.Path)
	}
	return pathString(k.Path)
}

// SortString returns keys as a sort parameter: -priority,created_at.
func SortString(keys []SortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, ",")
}

// ParseSort parses a sort: comma-separated field paths, each descending
// when it starts with "-" (-priority,created_at). An empty sort is nil.
// Errors are *Error.
func ParseSort(src string) ([]SortKey, error) {
	if len(src) > MaxSource {
		return nil, errAt(MaxSource, "sort is longer than %d bytes", MaxSource)
	}
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	var keys []SortKey
	seen := map[string]bool{}
	pos := 0
	for _, part := range strings.Split(src, ",") {
		start := pos
		pos += len(part) + 1
		trimmed := strings.TrimLeft(part, " ")
		off := start + len(part) - len(trimmed)
		trimmed = strings.TrimRight(trimmed, " ")
		var k SortKey
		if strings.HasPrefix(trimmed, "-") {
			k.Desc = true
			trimmed = trimmed[1:]
			off++
		}
		if trimmed == "" {
			return nil, errAt(off, "empty sort key: list fields as a,-b")
		}
		segs := strings.Split(trimmed, ".")
		if len(segs) > MaxPathLen {
			return nil, errAt(off, "field path has more than %d parts", MaxPathLen)
		}
		o := off
		for _, seg := range segs {
			if !ValidIdent(seg) {
				return nil, errAt(o, "%q is not a field name (letters, digits and _, not starting with a digit)", seg)
			}
			o += len(seg) + 1
		}
		k.Path = segs
		if name := pathString(segs); seen[name] {
			return nil, errAt(off, "%s is sorted on twice", name)
		} else {
			seen[name] = true
		}
		if len(keys) == MaxSortKeys {
			return nil, errAt(start, "sort has more than %d keys", MaxSortKeys)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
