package store

import (
	"context"
	"time"
)

// Identity links an account of an identity provider (an OpenID Connect
// issuer, named by the platform's configuration) to a user: who signs in
// with that provider's subject is that user.
type Identity struct {
	Project string
	// Provider is the configured provider's name ("google", "corp").
	Provider string
	// Subject is the provider's stable ID of the account (the ID token's
	// "sub" claim); emails change, subjects don't.
	Subject string
	UserID  string
	// Email is the address the provider gave when the link was made, kept
	// for the admin's information only.
	Email     string
	CreatedAt time.Time
}

// Identities stores the links between identity providers' accounts and
// users.
type Identities interface {
	// LinkIdentity stores a new link, or fails with ErrConflict if the
	// project has one for that provider and subject.
	LinkIdentity(ctx context.Context, id Identity) error
	// GetIdentity returns the link of a provider's subject, or ErrNotFound.
	GetIdentity(ctx context.Context, project, provider, subject string) (Identity, error)
	// ListIdentities returns a user's links ordered by provider, then
	// subject.
	ListIdentities(ctx context.Context, project, userID string) ([]Identity, error)
}
