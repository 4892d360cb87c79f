package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the auth store, matched with errors.Is.
var (
	// ErrConflict: a user with that email (or a record with that ID)
	// exists already.
	ErrConflict = errors.New("already exists")
	// ErrTokenReused: a refresh or one-time token was presented again
	// after its use, or after its family was revoked.
	ErrTokenReused = errors.New("token already used")
	// ErrTokenExpired: a refresh or one-time token is past its expiry.
	ErrTokenExpired = errors.New("token expired")
)

// User is an account of an app's users. Emails are stored lower-cased
// and unique per project.
type User struct {
	Project       string
	ID            string
	Email         string
	EmailVerified bool
	// PasswordHash is an argon2id hash in PHC form; empty for an account
	// that signs in only through an identity provider.
	PasswordHash string
	Roles        []string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// RefreshToken is one refresh token, stored by the SHA-256 of its value.
// Tokens that rotate from one login share a Family: presenting a used
// token again revokes the family.
type RefreshToken struct {
	Project   string
	Hash      [32]byte
	Family    string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OneTimeToken is an email verification or password reset token, stored by
// the SHA-256 of its value.
type OneTimeToken struct {
	Project   string
	Hash      [32]byte
	UserID    string
	Purpose   string // "verify" or "reset"
	ExpiresAt time.Time
}

// Mail is a message of the dev outbox: what would have been sent had SMTP
// been configured.
type Mail struct {
	Project   string
	ID        string
	To        string
	Subject   string
	Body      string
	CreatedAt time.Time
}

// APIKey is a service key: its secret part is stored as a SHA-256.
type APIKey struct {
	Project    string
	ID         string
	Name       string
	SecretHash [32]byte
	Scopes     []string
	CreatedAt  time.Time
}

// SigningKey is a key that signs access tokens; its private half is stored
// sealed by the master key.
type SigningKey struct {
	ID        string
	Sealed    []byte
	Public    []byte
	CreatedAt time.Time
	// RetireAt is when tokens it signed can no longer be valid: it is
	// published until then, and may be deleted after.
	RetireAt time.Time
}

// Auth stores the backend's accounts and tokens.
type Auth interface {
	// CreateUser stores a new user, or fails with ErrConflict if the
	// project has a user with that email or ID.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns a user by ID, or ErrNotFound.
	GetUser(ctx context.Context, project, id string) (User, error)
	// GetUserByEmail returns a user by email (matched lower-cased), or
	// ErrNotFound.
	GetUserByEmail(ctx context.Context, project, email string) (User, error)
	// ListUsers returns users ordered by email, those after the email
	// after (paging), at most Limit(limit).
	ListUsers(ctx context.Context, project, after string, limit int) ([]User, error)
	// UpdateUser reads a user, lets change modify it and writes it back in
	// one transaction; change may not change its project, ID or creation
	// time. An error of change is returned and nothing is written.
	UpdateUser(ctx context.Context, project, id string, change func(*User) error) (User, error)

	// PutRefreshToken stores a new refresh token.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken spends the token with hash and stores next in its
	// family, atomically, returning the spent token. A token spent before
	// (or revoked) revokes its whole family and fails with ErrTokenReused;
	// an expired one fails with ErrTokenExpired; an unknown one with
	// ErrNotFound. next's Family and UserID are taken from the spent token.
	RotateRefreshToken(ctx context.Context, project string, hash [32]byte, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshToken revokes the family of the token with hash and
	// returns the token, or ErrNotFound.
	RevokeRefreshToken(ctx context.Context, project string, hash [32]byte) (RefreshToken, error)
	// RevokeUserTokens revokes every refresh token of a user.
	RevokeUserTokens(ctx context.Context, project, userID string) error

	// PutOneTimeToken stores a one-time token.
	PutOneTimeToken(ctx context.Context, t OneTimeToken) error
	// UseOneTimeToken spends a token of purpose and returns it: ErrNotFound
	// if unknown (or for another purpose), ErrTokenReused if spent,
	// ErrTokenExpired if expired.
	UseOneTimeToken(ctx context.Context, project string, hash [32]byte, purpose string, now time.Time) (OneTimeToken, error)

	// PutMail adds a message to the dev outbox.
	PutMail(ctx context.Context, m Mail) error
	// ListMail returns the newest messages of the outbox, newest first.
	ListMail(ctx context.Context, project string, limit int) ([]Mail, error)

	// PutAPIKey stores a new API key, or fails with ErrConflict.
	PutAPIKey(ctx context.Context, k APIKey) error
	// GetAPIKey returns an API key by ID, or ErrNotFound.
	GetAPIKey(ctx context.Context, project, id string) (APIKey, error)
	// ListAPIKeys returns a project's API keys ordered by ID.
	ListAPIKeys(ctx context.Context, project string) ([]APIKey, error)
	// DeleteAPIKey deletes an API key, or returns ErrNotFound.
	DeleteAPIKey(ctx context.Context, project, id string) error

	// PutSigningKey stores a signing key, or fails with ErrConflict.
	PutSigningKey(ctx context.Context, k SigningKey) error
	// RewrapSigningKey replaces a signing key's sealed private half (a
	// master key rotation), only while it is still old: ErrConflict if
	// it changed, ErrNotFound without the key.
	RewrapSigningKey(ctx context.Context, id string, old, sealed []byte) error
	// ListSigningKeys returns the signing keys not retired at now, oldest
	// first, and deletes the retired ones.
	ListSigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)
}
