package rules

import (
	"context"
	"math"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Plan is what a list query can know from the caller before reading any document.
type Plan struct {
	// Decided means the rule's outcome does not depend on the document: Allow applies to all.
	Decided bool
	// Allow is the outcome when Decided.
	Allow bool
	// Eqs are conditions every document the rule allows satisfies: the query ANDs them.
	Eqs []Equality
	// Exact means the Eqs are the whole rule: a document passes exactly when every Equality
	// holds, so the caller may skip evaluating the rule on each document.
	Exact bool
}

// Equality says that the document's value at Path equals Value.
type Equality struct {
	// Path is the field path in the document: ["owner_id"], or ["meta", "team"] for
	// resource.meta.team. Keys may hold any character (resource["a.b"] gives ["a.b"]).
	Path []string
	// Value is a string, int64 (|v| <= 2^53), float64 (finite), bool or nil (JSON null).
	Value any
}

// Matches reports whether doc satisfies e as the rule's CEL equality sees it: the path leads
// through maps to a value that equals Value (numbers compare as numbers, a string only equals a
// string, nil only JSON null). A missing field never matches. It is the reference a query must
// implement. doc is a document as Input.Resource holds it: decoded JSON, nested objects as
// map[string]any.
func (e Equality) Matches(doc map[string]any) bool {
	var cur any = doc
	for _, k := range e.Path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	switch cur.(type) {
	case map[string]any, []any:
		return false
	}
	got := types.DefaultTypeAdapter.NativeToValue(cur)
	if types.IsError(got) {
		return false
	}
	want := types.DefaultTypeAdapter.NativeToValue(e.Value)
	return got.Equal(want) == types.True
}

type termKind int

const (
	// termOther is a term that needs the document (or the request): evaluated per document.
	termOther termKind = iota
	// termFree references neither resource nor request: evaluated at plan time.
	termFree
	// termEq is resource.PATH == E, E free: E evaluated at plan time.
	termEq
)

type term struct {
	kind termKind
	prg  cel.Program // termFree: the term; termEq: E
	path []string    // termEq
}

// planner is what Compile learns of a rule's shape for Plan.
type planner struct {
	refsResource bool
	refsRequest  bool
	terms        []term
}

// analyze splits the rule into the terms of its top-level conjunction and prepares a program
// for each part that Plan evaluates. Anything it cannot prepare becomes termOther, which only
// costs precision.
func analyze(e *cel.Env, a *celast.AST) planner {
	refs := freeIdents(a.Expr())
	p := planner{refsResource: refs["resource"], refsRequest: refs["request"]}
	if !p.refsResource && !p.refsRequest {
		return p
	}
	for _, t := range conjuncts(a.Expr(), nil) {
		p.terms = append(p.terms, analyzeTerm(e, a, t))
	}
	return p
}

func analyzeTerm(e *cel.Env, a *celast.AST, t celast.Expr) term {
	if isFree(t) {
		if prg, err := subProgram(e, a, t); err == nil {
			return term{kind: termFree, prg: prg}
		}
		return term{kind: termOther}
	}
	if t.Kind() != celast.CallKind {
		return term{kind: termOther}
	}
	call := t.AsCall()
	if call.FunctionName() != operators.Equals || call.IsMemberFunction() || len(call.Args()) != 2 {
		return term{kind: termOther}
	}
	l, r := call.Args()[0], call.Args()[1]
	for _, side := range [2][2]celast.Expr{{l, r}, {r, l}} {
		path, ok := resourcePath(side[0])
		if !ok || !isFree(side[1]) {
			continue
		}
		prg, err := subProgram(e, a, side[1])
		if err != nil {
			return term{kind: termOther}
		}
		return term{kind: termEq, prg: prg, path: path}
	}
	return term{kind: termOther}
}

// subProgram prepares a sub-expression of the checked AST for evaluation on its own.
func subProgram(e *cel.Env, a *celast.AST, sub celast.Expr) (cel.Program, error) {
	checked := celast.NewCheckedAST(celast.NewAST(sub, a.SourceInfo()), a.TypeMap(), a.ReferenceMap())
	return e.PlanProgram(checked, programOptions()...)
}

// conjuncts flattens the top-level && of e into its terms.
func conjuncts(e celast.Expr, out []celast.Expr) []celast.Expr {
	if e.Kind() == celast.CallKind {
		c := e.AsCall()
		if c.FunctionName() == operators.LogicalAnd && !c.IsMemberFunction() {
			for _, arg := range c.Args() {
				out = conjuncts(arg, out)
			}
			return out
		}
	}
	return append(out, e)
}

// resourcePath returns PATH for resource.PATH, where each step is a field selection or an index
// by a string literal, and at least one step. Presence tests (has) are not paths.
func resourcePath(e celast.Expr) ([]string, bool) {
	var rev []string
	for {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() != "resource" || len(rev) == 0 {
				return nil, false
			}
			path := make([]string, len(rev))
			for i, k := range rev {
				path[len(rev)-1-i] = k
			}
			return path, true
		case celast.SelectKind:
			s := e.AsSelect()
			if s.IsTestOnly() {
				return nil, false
			}
			rev = append(rev, s.FieldName())
			e = s.Operand()
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || c.IsMemberFunction() || len(c.Args()) != 2 {
				return nil, false
			}
			key := c.Args()[1]
			if key.Kind() != celast.LiteralKind {
				return nil, false
			}
			s, ok := key.AsLiteral().(types.String)
			if !ok {
				return nil, false
			}
			rev = append(rev, string(s))
			e = c.Args()[0]
		default:
			return nil, false
		}
	}
}

// isFree reports whether e references neither resource nor request (only auth, now, literals
// and its own comprehension variables).
func isFree(e celast.Expr) bool {
	refs := freeIdents(e)
	return !refs["resource"] && !refs["request"]
}

// freeIdents returns the identifiers e references that its comprehensions don't bind.
func freeIdents(e celast.Expr) map[string]bool {
	refs := map[string]bool{}
	walk(e, nil, func(x celast.Expr, bound []string) {
		if x.Kind() == celast.IdentKind && !isBound(x.AsIdent(), bound) {
			refs[x.AsIdent()] = true
		}
	})
	return refs
}

func isBound(name string, bound []string) bool {
	for _, b := range bound {
		if b == name {
			return true
		}
	}
	return false
}

// walk calls fn on e and every expression under it, pre-order, with the names comprehensions
// bind at that point. Its depth is that of the AST, which the parser bounds.
func walk(e celast.Expr, bound []string, fn func(celast.Expr, []string)) {
	fn(e, bound)
	switch e.Kind() {
	case celast.SelectKind:
		walk(e.AsSelect().Operand(), bound, fn)
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			walk(c.Target(), bound, fn)
		}
		for _, arg := range c.Args() {
			walk(arg, bound, fn)
		}
	case celast.ListKind:
		for _, el := range e.AsList().Elements() {
			walk(el, bound, fn)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			walk(me.Key(), bound, fn)
			walk(me.Value(), bound, fn)
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			walk(f.AsStructField().Value(), bound, fn)
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		walk(c.IterRange(), bound, fn)
		walk(c.AccuInit(), bound, fn)
		inner := append(append([]string(nil), bound...), c.IterVar(), c.AccuVar())
		if c.HasIterVar2() {
			inner = append(inner, c.IterVar2())
		}
		walk(c.LoopCondition(), inner, fn)
		walk(c.LoopStep(), inner, fn)
		walk(c.Result(), append(append([]string(nil), bound...), c.AccuVar()), fn)
	}
}

// Plan evaluates what it can of the rule for a list query by this caller at now. See the
// package documentation for what each outcome means and why it is sound. The evaluations the
// plan stands for must use the same auth and now. A rule that references request is never
// Decided, and its terms that do are left to the per-document evaluation.
func (r *Rule) Plan(auth Auth, now time.Time) Plan {
	ctx := context.Background()
	in := Input{Auth: auth, Now: now}
	if !r.pl.refsResource && !r.pl.refsRequest {
		ok, _ := r.Eval(ctx, in)
		return Plan{Decided: true, Allow: ok}
	}
	act := newActivation(&in)
	deny := Plan{Decided: true, Allow: false}
	var p Plan
	exact := true
	for _, t := range r.pl.terms {
		switch t.kind {
		case termFree:
			ok, err := evalBool(ctx, t.prg, act)
			if err != nil || !ok {
				return deny
			}
		case termEq:
			v, _, err := t.prg.Eval(act)
			if err != nil {
				return deny
			}
			val, usable, exactVal := scalar(v)
			if !usable {
				exact = false
				continue
			}
			p.Eqs = append(p.Eqs, Equality{Path: t.path, Value: val})
			exact = exact && exactVal
		default:
			exact = false
		}
	}
	if exact {
		exact = r.confirmExact(ctx, in, p.Eqs)
	}
	p.Exact = exact
	return p
}

// confirmExact evaluates the whole rule on a document built from eqs: when the plan is exact,
// every document satisfying eqs evaluates the same way (same terms, same values, same cost), so
// this must be true.
func (r *Rule) confirmExact(ctx context.Context, in Input, eqs []Equality) bool {
	doc := map[string]any{}
	for _, eq := range eqs {
		m := doc
		for i, k := range eq.Path {
			last := i == len(eq.Path)-1
			cur, exists := m[k]
			if last {
				if exists {
					return false // the same path twice (or under another): don't guess
				}
				m[k] = eq.Value
				break
			}
			if !exists {
				next := map[string]any{}
				m[k] = next
				m = next
				continue
			}
			next, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			m = next
		}
	}
	in.Resource = doc
	ok, err := r.Eval(ctx, in)
	return err == nil && ok
}

// maxExactInt is the largest integer a float64 (hence a JSON number in most stores) holds
// exactly.
const maxExactInt = 1 << 53

// scalar converts E's value to an Equality value. usable is false for values an equality in
// SQL can't faithfully express; exact is false for values that narrow soundly but whose SQL
// comparison differs at the edges (null).
func scalar(v ref.Val) (val any, usable, exact bool) {
	switch x := v.(type) {
	case types.String:
		return string(x), true, true
	case types.Bool:
		return bool(x), true, true
	case types.Int:
		if x > maxExactInt || x < -maxExactInt {
			return nil, false, false
		}
		return int64(x), true, true
	case types.Uint:
		if x > maxExactInt {
			return nil, false, false
		}
		return int64(x), true, true
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false, false
		}
		return f, true, true
	case types.Null:
		return nil, true, false
	}
	return nil, false, false
}
