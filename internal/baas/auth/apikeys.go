package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/store"
)

// APIKeyPrefix starts every service API key: "hlk_<id>_<secret>", so
// that a leaked key is recognisable (secret scanners) and its ID visible.
const APIKeyPrefix = "hlk_"

// apiKeyCacheTTL is how long a verified API key is trusted before it is
// read again: a deleted key stops working within it on other nodes.
const apiKeyCacheTTL = 30 * time.Second

var scopeRE = regexp.MustCompile(`^(\*|[a-z][a-z0-9_-]{0,31}(:[a-z0-9_*-]{1,32}){0,2})$`)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }

// APIKeyView is an API key as listed: never its secret.
type APIKeyView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	// Key is the whole key, set only in the answer that created it.
	Key string `json:"key,omitempty"`
}

// CreateAPIKey makes a service key with scopes ("db:read", "db:*",
// "admin", ...) and returns it: the only time the secret is shown.
func (s *Service) CreateAPIKey(ctx context.Context, name string, scopes []string) (APIKeyView, error) {
	if !nameRE.MatchString(name) {
		return APIKeyView{}, apierror.BadRequest("name: 1-64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit")
	}
	if len(scopes) == 0 || len(scopes) > 32 {
		return APIKeyView{}, apierror.BadRequest("scopes: give 1 to 32, e.g. [\"db:read\"]")
	}
	for _, sc := range scopes {
		if !scopeRE.MatchString(sc) {
			return APIKeyView{}, apierror.BadRequest("scopes: %q is not a scope (e.g. \"admin\", \"db:read\", \"db:todos:write\", \"db:*\")", sc)
		}
	}
	idb := make([]byte, 8)
	if _, err := rand.Read(idb); err != nil {
		return APIKeyView{}, err
	}
	id := hex.EncodeToString(idb)
	secret, hash, err := randomToken(32)
	if err != nil {
		return APIKeyView{}, err
	}
	now := s.now()
	k := store.APIKey{Project: s.cfg.Project, ID: id, Name: name, SecretHash: hash, Scopes: scopes, CreatedAt: now}
	if err := s.cfg.Store.PutAPIKey(ctx, k); err != nil {
		return APIKeyView{}, err
	}
	s.emit("auth.key.created", map[string]any{"id": id, "name": name, "scopes": scopes})
	return APIKeyView{ID: id, Name: name, Scopes: scopes, CreatedAt: now, Key: APIKeyPrefix + id + "_" + secret}, nil
}

// ListAPIKeys lists the service keys, without secrets.
func (s *Service) ListAPIKeys(ctx context.Context) ([]APIKeyView, error) {
	ks, err := s.cfg.Store.ListAPIKeys(ctx, s.cfg.Project)
	if err != nil {
		return nil, err
	}
	out := make([]APIKeyView, len(ks))
	for i, k := range ks {
		out[i] = APIKeyView{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt}
	}
	return out, nil
}

// DeleteAPIKey revokes a service key.
func (s *Service) DeleteAPIKey(ctx context.Context, id string) error {
	if err := s.cfg.Store.DeleteAPIKey(ctx, s.cfg.Project, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apierror.NotFound("key_not_found", "no API key with ID %q", id)
		}
		return err
	}
	s.tokens.drop(Key, id)
	s.emit("auth.key.deleted", map[string]any{"id": id})
	return nil
}

func (s *Service) verifyAPIKey(ctx context.Context, key string) (Principal, error) {
	rest := strings.TrimPrefix(key, APIKeyPrefix)
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" || len(key) > 128 {
		return Principal{}, ErrInvalidToken
	}
	k, err := s.cfg.Store.GetAPIKey(ctx, s.cfg.Project, id)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, err
	}
	sum := hashToken(secret)
	if subtle.ConstantTimeCompare(sum[:], k.SecretHash[:]) != 1 {
		return Principal{}, ErrInvalidToken
	}
	return Principal{Kind: Key, ID: k.ID, Scopes: k.Scopes}, nil
}

// Authenticate returns who a bearer credential is: an access token (a
// user) or an API key. An empty credential is the anonymous principal.
// Errors are ErrInvalidToken (the credential is wrong, expired, or its
// user disabled) or the store's.
func (s *Service) Authenticate(ctx context.Context, credential string) (Principal, error) {
	if credential == "" {
		return Principal{Kind: Anonymous}, nil
	}
	if len(credential) > 4096 {
		return Principal{}, ErrInvalidToken
	}
	if s.cfg.AdminKey != nil && s.cfg.AdminKey(credential) {
		return Principal{Kind: Admin, ID: "admin"}, nil
	}
	now := s.now()
	e, ok := s.tokens.get(credential, now)
	if !ok {
		var err error
		if strings.HasPrefix(credential, APIKeyPrefix) {
			e.p, err = s.verifyAPIKey(ctx, credential)
			e.exp = now.Add(apiKeyCacheTTL)
		} else {
			e.p, e.exp, e.issued, err = s.verify(ctx, credential, now)
		}
		if err != nil {
			return Principal{}, err
		}
		s.tokens.put(credential, e, now)
	}
	p := e.p
	if p.Kind == User {
		s.mu.RLock()
		before, revoked := s.revoked[p.ID]
		s.mu.RUnlock()
		if revoked && !e.issued.After(before) {
			return Principal{}, fmt.Errorf("%w: issued before the account changed", ErrInvalidToken)
		}
	}
	return p, nil
}
