package store

import (
	"context"
	"time"
)

// Secret is one secret's current version, stored encrypted: Ciphertext is
// the value sealed by a data key of its own, and WrappedKey that data key
// sealed by the master key. The store never sees a value or a data key in
// clear.
type Secret struct {
	Project string
	Name    string
	// Version counts the secret's values from 1; every set adds one.
	Version    int
	WrappedKey []byte
	Ciphertext []byte
	// CreatedAt is the first version's time, UpdatedAt this version's.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// KMSKey is one version of a named encryption key of the KMS API: its key
// material sealed by the master key.
type KMSKey struct {
	Project string
	Name    string
	// Version counts the key's versions from 1; a rotation adds one.
	// Ciphertexts name the version that made them.
	Version int
	Wrapped []byte
	// Functions may use the key through their tokens.
	Functions []string
	CreatedAt time.Time
}

// Secrets stores function secrets and the KMS API's keys.
type Secrets interface {
	// PutSecret stores s as its name's next version: s.Version must be 1
	// for a name without a secret, or the stored version plus one; else it
	// fails with ErrConflict (someone else set it meanwhile) and writes
	// nothing. The first version's CreatedAt is kept by later ones.
	PutSecret(ctx context.Context, s Secret) error
	// GetSecret returns a secret, or ErrNotFound.
	GetSecret(ctx context.Context, project, name string) (Secret, error)
	// ListSecrets returns a project's secrets ordered by name.
	ListSecrets(ctx context.Context, project string) ([]Secret, error)
	// DeleteSecret deletes a secret, or returns ErrNotFound.
	DeleteSecret(ctx context.Context, project, name string) error
	// RewrapSecret replaces the wrapped data key of a secret's version (a
	// master key rotation) when it is still old, the one the caller read;
	// ErrConflict if the secret is at another version now or its wrapped
	// key is not old (it was deleted and set again at the same version
	// number meanwhile), ErrNotFound if it is gone.
	RewrapSecret(ctx context.Context, project, name string, version int, old, wrapped []byte) error

	// PutKMSKey stores a key's version; ErrConflict if that version
	// exists.
	PutKMSKey(ctx context.Context, k KMSKey) error
	// GetKMSKey returns a key's version, its newest for version 0, or
	// ErrNotFound.
	GetKMSKey(ctx context.Context, project, name string, version int) (KMSKey, error)
	// ListKMSKeys returns every version of a project's keys ordered by
	// name, then version.
	ListKMSKeys(ctx context.Context, project string) ([]KMSKey, error)
	// RewrapKMSKey replaces a key version's wrapped material, or returns
	// ErrNotFound.
	RewrapKMSKey(ctx context.Context, project, name string, version int, wrapped []byte) error
}
