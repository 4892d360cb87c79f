package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/hostless/hostless/internal/baas/storage"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// presignKeySetting holds the key that signs the browser API's presigned
// URLs, sealed under the master key, base64.
const presignKeySetting = "storage_presign_key"

// startStorage builds the object storage that the S3 API (own listener)
// and the browser API (/v1/storage on the main server) share: metadata in
// the store, bytes in a blob store of their own (objectblobs.go: under
// <data>/objects, apart from function artifacts, whose lifecycle differs,
// or in NATS), events on the bus. Call it after the master key is loaded.
func (a *App) startStorage(ctx context.Context) error {
	blobs, err := a.objectBlobs(ctx)
	if err != nil {
		return err
	}
	signKey, err := a.presignKey(ctx)
	if err != nil {
		return err
	}
	lookup := func(string) (string, bool) { return "", false }
	id, secret, err := a.storedAWSKey(ctx)
	if err != nil {
		return err
	}
	if id != "" {
		lookup = func(key string) (string, bool) { return secret, key == id }
	}
	a.objects = storage.New(storage.Config{
		Objects: a.store, Blobs: blobs, Project: function.DefaultProject, MaxObjectBytes: a.cfg.MaxObjectBytes, Log: a.log,
		Emit: a.emit, Settings: a.store, SignKey: signKey, Lookup: lookup, Domain: a.cfg.S3Domain,
	})
	return nil
}

// issueCredentials issues the temporary S3 credentials of an instance of
// v, granted what its spec's buckets say, on this node until the instance
// stops.
func (a *App) issueCredentials(v *function.Version) (function.Credentials, func(), error) {
	if a.objects == nil {
		return function.Credentials{}, nil, errors.New("the object storage is not running")
	}
	grants := make(map[string]storage.Access, len(v.Spec.Buckets))
	for b, access := range v.Spec.Buckets {
		acc, err := storage.ParseAccess(access)
		if err != nil {
			return function.Credentials{}, nil, fmt.Errorf("bucket %s: %w", b, err)
		}
		grants[b] = acc
	}
	c, revoke := a.objects.Issue(grants)
	return function.Credentials(c), revoke, nil
}

// checkBuckets refuses a deploy that names buckets that don't exist.
func (a *App) checkBuckets(s *function.Spec) error {
	if len(s.Buckets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for b := range s.Buckets {
		_, err := a.store.GetBucket(ctx, function.DefaultProject, b)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: bucket %q does not exist: create it first (hostless deploy creates the buckets a manifest names; or PUT /v1/storage/%s)", function.ErrInvalid, b, b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// presignKey returns the key that signs presigned URLs, made and stored
// sealed on the first start, so URLs stay valid across restarts and nodes.
func (a *App) presignKey(ctx context.Context) ([]byte, error) {
	b64, err := a.store.GetSetting(ctx, presignKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		sealed, err := a.masterKey.Seal(key, []byte(presignKeySetting))
		if err != nil {
			return nil, err
		}
		if _, err := a.store.PutSettingIfAbsent(ctx, presignKeySetting, base64.StdEncoding.EncodeToString(sealed)); err != nil {
			return nil, err
		}
		// Another node may have stored its key first: use what is stored.
		if b64, err = a.store.GetSetting(ctx, presignKeySetting); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	sealed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("the stored presigning key is corrupt")
	}
	key, err := a.masterKey.Open(sealed, []byte(presignKeySetting))
	if err != nil {
		return nil, fmt.Errorf("the stored presigning key can't be read with this master key (%s): %w", a.masterKey.ID(), err)
	}
	return key, nil
}
