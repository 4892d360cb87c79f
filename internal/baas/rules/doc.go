// Package rules compiles and evaluates the access rules of the backend: one CEL expression per
// operation (list, get, create, update, delete) of a document collection, and later of a storage
// bucket. A rule such as
//
//	auth.id != "" && resource.owner_id == auth.id
//
// is compiled once when the collection's rules are saved (Compile) and evaluated for each request
// or each document (Rule.Eval). The HTTP layer decides what a missing rule means (only admins);
// this package only sees compiled rules.
//
// # What a rule sees
//
//   - auth: the caller, a map with id, email (strings), roles (list of strings), kind ("user",
//     "key", "admin", "function" or "anonymous") and scopes (list of strings). Other fields of
//     auth are compile errors.
//   - resource: the stored document, map(string, dyn): id, created_at, updated_at (strings) and
//     the user's own fields.
//   - request: a map with method (string) and data (map(string, dyn): the incoming document on
//     create and update). Other fields of request are compile errors.
//   - now: the time of the request, a timestamp.
//
// A rule must type-check to bool. Since resource and request.data are dyn, a bare field such as
// `resource.published` is dyn and rejected: write `resource.published == true`.
//
// # Deny on error
//
// Evaluation never allows on error. A missing key (`resource.owner_id` on a document without
// owner_id), an operation on the wrong type at run time, an exceeded cost limit or a cancelled
// context all make Eval return false with the error, which is for the log, not for the client.
// CEL's && and || absorb errors where the other side decides: `resource.owner_id == auth.id ||
// "admin" in auth.roles` allows an admin even on a document without owner_id. Use has() to test
// for an optional field: `has(resource.owner_id) && resource.owner_id == auth.id`.
//
// # Limits
//
// The source is at most MaxSourceBytes, the parser's nesting depth and the number of AST nodes
// are bounded, and every evaluation runs under a CEL cost limit (CostLimit) and checks its
// context inside comprehensions, so a rule iterating a huge list held in a document stops with
// an error (and denies) instead of burning CPU. Compile errors name the problem and its line and
// column in the rule, in words safe to show the rule's author.
//
// # Narrowing lists
//
// A list rule runs on every document a query could return. Rule.Plan turns what can be known
// from the caller alone into a Plan, so that the query narrows in SQL instead of filtering a
// full scan:
//
//   - A rule that references neither resource nor request is Decided: evaluated once for the
//     caller, it allows or denies every document.
//   - Otherwise the rule is split into the terms of its top-level conjunction (&&, any nesting;
//     nothing inside ||, !, ternaries or comprehensions). A term `resource.PATH == E` (either
//     side; PATH a chain of fields or string-literal indexes) where E references only auth, now
//     and literals becomes an Equality{Path, Value} with E evaluated for the caller. A term that
//     references neither resource nor request is evaluated now.
//   - Exact is true when every term became an Equality of a plain scalar or is a resource-free
//     term that evaluated to true: then `WHERE path = value` for each Equality is the rule, and
//     the caller may skip per-document evaluation. Otherwise the caller ANDs the Equalities into
//     its query and still evaluates the rule on each document it reads.
//
// Soundness. CEL's && is commutative over errors: it is true only when every term is true, and
// false as soon as one term is false, whatever errors the others raise. Hence (1) if a
// resource-free term is false, or raises an error, or an E raises an error (that term can then
// never be true), no document can pass: Plan is Decided with Allow false. (2) A document on which
// an Equality does not hold makes its term false or an error, so the rule denies it: adding the
// Equalities to the query never drops a document the rule would allow. (3) When every term is an
// Equality or a true resource-free term, a document passes exactly when every Equality holds.
// Plan confirms (3) by evaluating the whole rule on a synthetic document built from the
// Equalities (which also checks the cost of that evaluation against the limit, the same for every
// matching document); if that is not true, Exact is false. Plan must be used with the same now as
// the evaluations it stands for. A query implementing Equality must compare as CEL does (see
// Equality.Matches): a JSON string only equals a string value, numbers compare as numbers (the
// text of 1.0 is not "1"), strings byte for byte, and a missing field never matches. Equalities
// with a null Value (JSON null, not a missing field) are never exact; values CEL can compare but
// SQL cannot do so faithfully (lists, maps, bytes, timestamps, integers beyond 2^53, NaN) produce
// no Equality and make the plan inexact.
//
// Package rules knows nothing of SQL, HTTP or the store: it must never import database/sql, a
// driver, net/http or internal/store. The query builder consumes Plan.
package rules
