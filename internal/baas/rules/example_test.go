package rules_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/baas/rules"
)

func Example() {
	r, err := rules.Compile(`auth.id != "" && resource.owner_id == auth.id`)
	if err != nil {
		panic(err)
	}
	alice := rules.Auth{ID: "alice", Kind: rules.KindUser}
	now := time.Now()

	ok, _ := r.Eval(context.Background(), rules.Input{Auth: alice, Now: now,
		Resource: map[string]any{"id": "n1", "owner_id": "alice"}})
	fmt.Println("get:", ok)

	// A list by alice narrows to her documents and needs no per-document evaluation.
	fmt.Printf("list: %+v\n", r.Plan(alice, now))
	// An anonymous caller can list nothing.
	fmt.Printf("anonymous list: %+v\n", r.Plan(rules.Auth{Kind: rules.KindAnonymous}, now))

	_, err = rules.Compile(`resource.owner_id == auth.uid`)
	fmt.Println(err)
	// Output:
	// get: true
	// list: {Decided:false Allow:false Eqs:[{Path:[owner_id] Value:alice}] Exact:true}
	// anonymous list: {Decided:true Allow:false Eqs:[] Exact:false}
	// invalid rule: 1:22: auth has no field "uid" (it has email, id, kind, roles, scopes)
}
