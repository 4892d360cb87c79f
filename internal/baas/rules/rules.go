package rules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

const (
	// MaxSourceBytes bounds the length of a rule's source.
	MaxSourceBytes = 4 << 10
	// MaxNodes bounds the number of nodes of a rule's AST, macros expanded.
	MaxNodes = 1000
	// MaxNesting bounds the parser's recursion depth, hence how deeply a rule nests.
	MaxNesting = 48
	// CostLimit bounds the CEL cost of one evaluation. A typical rule costs under 20; iterating
	// a list costs a few units per element, so a rule may walk lists of a few thousand elements.
	CostLimit = 20_000
)

// Kinds of callers, the values of auth.kind.
const (
	KindUser      = "user"
	KindKey       = "key"
	KindAdmin     = "admin"
	KindFunction  = "function"
	KindAnonymous = "anonymous"
)

// Auth is the caller, seen by a rule as auth.
type Auth struct {
	ID     string
	Email  string
	Roles  []string
	Kind   string
	Scopes []string
}

// Input is what one evaluation sees. Resource is the stored document (nil when there is none,
// as on create); its values are those of decoded JSON (string, float64 or int64, bool, nil,
// []any, map[string]any). Request holds "method" and, on create and update, "data".
type Input struct {
	Auth     Auth
	Resource map[string]any
	Request  map[string]any
	Now      time.Time
}

// The fields a rule may select on auth and request; others are compile errors.
var (
	authFields    = []string{"id", "email", "roles", "kind", "scopes"}
	requestFields = []string{"method", "data"}
)

// Issue is one problem of a rule's source, at a 1-based line and column.
type Issue struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// CompileError is returned by Compile for a rule that is invalid. Its message and issues are
// safe to show the author of the rule.
type CompileError struct {
	Issues []Issue
}

func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString("invalid rule: ")
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if is.Line > 0 {
			fmt.Fprintf(&b, "%d:%d: ", is.Line, is.Column)
		}
		b.WriteString(is.Message)
	}
	return b.String()
}

func compileErr(line, col int, format string, args ...any) *CompileError {
	return &CompileError{Issues: []Issue{{Line: line, Column: col, Message: fmt.Sprintf(format, args...)}}}
}

// Rule is a compiled rule. It is safe for concurrent use.
type Rule struct {
	src string
	prg cel.Program
	pl  planner
}

// String returns the rule's source.
func (r *Rule) String() string { return r.src }

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// env returns the environment every rule compiles in, built once.
func env() (*cel.Env, error) {
	envOnce.Do(func() {
		dynMap := cel.MapType(cel.StringType, cel.DynType)
		envVal, envErr = cel.NewEnv(
			cel.Variable("auth", dynMap),
			cel.Variable("resource", dynMap),
			cel.Variable("request", dynMap),
			cel.Variable("now", cel.TimestampType),
			cel.ParserExpressionSizeLimit(MaxSourceBytes),
			cel.ParserRecursionLimit(MaxNesting),
			cel.ExpressionNodeLimit(MaxNodes),
			cel.DefaultUTCTimeZone(true),
		)
	})
	return envVal, envErr
}

func programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{
		cel.CostLimit(CostLimit),
		cel.InterruptCheckFrequency(100),
	}
}

// Compile parses and type-checks src and prepares it for evaluation and planning. An invalid
// rule returns a *CompileError.
func Compile(src string) (*Rule, error) {
	if strings.TrimSpace(src) == "" {
		return nil, compileErr(0, 0, "the rule is empty")
	}
	if len(src) > MaxSourceBytes {
		return nil, compileErr(0, 0, "the rule is %d bytes long, more than the limit of %d", len(src), MaxSourceBytes)
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("rules: environment: %w", err)
	}
	source := common.NewStringSource(src, "rule")
	a, iss := e.CompileSource(source)
	if iss != nil && iss.Err() != nil {
		return nil, issuesErr(iss)
	}
	native := a.NativeRep()
	if err := checkFields(native); err != nil {
		return nil, err
	}
	if t := a.OutputType(); !t.IsExactType(types.BoolType) {
		line, col := firstToken(src)
		return nil, compileErr(line, col,
			"a rule must be a bool expression, but this one is %s (compare explicitly, e.g. resource.published == true)",
			cel.FormatCELType(t))
	}
	prg, err := e.Program(a, programOptions()...)
	if err != nil {
		return nil, compileErr(0, 0, "the rule cannot be prepared: %s", cleanMessage(err.Error()))
	}
	r := &Rule{src: src, prg: prg}
	r.pl = analyze(e, native)
	return r, nil
}

// firstToken returns the 1-based line and column of the first non-space character of src.
func firstToken(src string) (line, col int) {
	line, col = 1, 1
	for _, r := range src {
		switch r {
		case '\n':
			line, col = line+1, 1
		case ' ', '\t', '\r':
			col++
		default:
			return line, col
		}
	}
	return line, col
}

// issuesErr turns CEL's issues into a CompileError.
func issuesErr(iss *cel.Issues) *CompileError {
	ce := &CompileError{}
	for _, e := range iss.Errors() {
		is := Issue{Message: cleanMessage(e.Message)}
		if e.Location != nil && e.Location.Line() > 0 {
			is.Line, is.Column = e.Location.Line(), e.Location.Column()+1
		}
		ce.Issues = append(ce.Issues, is)
	}
	if len(ce.Issues) == 0 {
		ce.Issues = []Issue{{Message: "the rule does not compile"}}
	}
	return ce
}

// cleanMessage drops CEL's mention of containers, which rules don't use.
func cleanMessage(s string) string {
	return strings.ReplaceAll(s, " (in container '')", "")
}

// checkFields rejects selections of unknown fields of auth and request, which would otherwise
// fail (and deny) only at run time.
func checkFields(a *celast.AST) error {
	var ce *CompileError
	walk(a.Expr(), nil, func(e celast.Expr, bound []string) {
		if ce != nil || e.Kind() != celast.SelectKind {
			return
		}
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() != celast.IdentKind || isBound(op.AsIdent(), bound) {
			return
		}
		var known []string
		switch op.AsIdent() {
		case "auth":
			known = authFields
		case "request":
			known = requestFields
		default:
			return
		}
		for _, f := range known {
			if f == sel.FieldName() {
				return
			}
		}
		loc := a.SourceInfo().GetStartLocation(op.ID())
		sorted := append([]string(nil), known...)
		sort.Strings(sorted)
		ce = compileErr(loc.Line(), loc.Column()+1, "%s has no field %q (it has %s)",
			op.AsIdent(), sel.FieldName(), strings.Join(sorted, ", "))
	})
	if ce != nil {
		return ce
	}
	return nil
}

// Eval evaluates the rule on in. It returns true only when the rule evaluates to true; any error
// (a missing field, a wrong type, the cost limit, ctx done) returns false with the error, for
// logging.
func (r *Rule) Eval(ctx context.Context, in Input) (bool, error) {
	return evalBool(ctx, r.prg, newActivation(&in))
}

// ErrNotBool is returned by Eval when a rule's value at run time is not a bool.
var ErrNotBool = errors.New("rule did not evaluate to a bool")

func evalBool(ctx context.Context, prg cel.Program, act *activation) (bool, error) {
	var (
		v   ref.Val
		err error
	)
	if ctx.Done() == nil {
		// Nothing can cancel ctx: skip the per-evaluation cancellable context of ContextEval.
		v, _, err = prg.Eval(act)
	} else {
		v, _, err = prg.ContextEval(ctx, act)
	}
	if err != nil {
		return false, fmt.Errorf("evaluate rule: %w", err)
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate rule: %w (got %s)", ErrNotBool, v.Type().(ref.Type).TypeName())
	}
	return bool(b), nil
}

// activation binds the rule's variables without building a map per evaluation.
type activation struct {
	in       *Input
	resource map[string]any
	request  map[string]any
	authMap  map[string]any
}

var emptyMap = map[string]any{}

func newActivation(in *Input) *activation {
	a := &activation{in: in, resource: in.Resource, request: in.Request}
	if a.resource == nil {
		a.resource = emptyMap
	}
	if a.request == nil {
		a.request = emptyMap
	}
	return a
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "auth":
		if a.authMap == nil {
			a.authMap = authMap(&a.in.Auth)
		}
		return a.authMap, true
	case "resource":
		return a.resource, true
	case "request":
		return a.request, true
	case "now":
		return types.Timestamp{Time: a.in.Now}, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func authMap(au *Auth) map[string]any {
	roles, scopes := au.Roles, au.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"id":     au.ID,
		"email":  au.Email,
		"roles":  roles,
		"kind":   au.Kind,
		"scopes": scopes,
	}
}
