package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/baas/auth"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Callers authenticates a request's caller (auth.Service).
type Callers interface {
	Caller(r *http.Request) (auth.Principal, error)
}

// maxKMSBody bounds a KMS request's JSON: a base64 plaintext and a context.
const maxKMSBody = MaxPlaintextBytes*4/3 + MaxContextBytes + 4<<10

// Register serves the secrets API (admin only) and the KMS API on mux:
//
//	PUT    /v1/secrets/{name}               body: the value (at most 64 KiB)
//	GET    /v1/secrets                      names, versions, times
//	DELETE /v1/secrets/{name}
//	POST   /v1/secrets/rotate-master-key    re-seal data keys under the current master key
//	POST   /v1/kms/keys                     {name, functions}
//	GET    /v1/kms/keys
//	POST   /v1/kms/keys/{name}/rotate
//	POST   /v1/kms/{key}/encrypt            {plaintext (base64), context}
//	POST   /v1/kms/{key}/decrypt            {ciphertext (base64), context}
//	POST   /v1/kms/{key}/generate-data-key  {bytes, context}
func (s *Service) Register(mux *http.ServeMux, callers Callers, log *slog.Logger) {
	h := func(pattern string, admin bool, fn func(w http.ResponseWriter, r *http.Request, p auth.Principal) error) {
		mux.Handle(pattern, apierror.Wrap(log, func(w http.ResponseWriter, r *http.Request) error {
			p, err := callers.Caller(r)
			if err != nil {
				return err
			}
			if p.Kind == auth.Anonymous {
				e := apierror.New(http.StatusUnauthorized, "unauthorized", "send a credential as \"Authorization: Bearer <token>\"")
				e.Header = http.Header{"Www-Authenticate": {`Bearer realm="hostless"`}}
				return e
			}
			if admin && !p.IsAdmin() {
				return apierror.New(http.StatusForbidden, "forbidden", "this needs the admin key, an admin's access token or an API key with the admin scope")
			}
			return httpError(fn(w, r, p))
		}))
	}
	h("PUT /v1/secrets/{name}", true, s.putSecret)
	h("GET /v1/secrets", true, s.listSecrets)
	h("DELETE /v1/secrets/{name}", true, s.deleteSecret)
	h("POST /v1/secrets/rotate-master-key", true, s.rotateMasterKey)
	h("POST /v1/kms/keys", true, s.createKey)
	h("GET /v1/kms/keys", true, s.listKeys)
	h("POST /v1/kms/keys/{name}/rotate", true, s.rotateKey)
	h("POST /v1/kms/{key}/encrypt", false, s.encrypt)
	h("POST /v1/kms/{key}/decrypt", false, s.decrypt)
	h("POST /v1/kms/{key}/generate-data-key", false, s.generateDataKey)
}

// httpError renders the service's errors; anything else is a 500 whose
// cause goes to the log only (and never holds a value).
func httpError(err error) error {
	var ae *apierror.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, ErrForbidden):
		return apierror.New(http.StatusForbidden, "forbidden", "this credential may not use that key that way (API keys need the scope kms:{key}:encrypt or kms:{key}:decrypt; functions, a key that names them)")
	case errors.Is(err, store.ErrNotFound):
		return apierror.NotFound("not_found", "%s", "no such secret or key")
	case errors.Is(err, store.ErrConflict):
		return apierror.New(http.StatusConflict, "conflict", "%s", err.Error()) // names only, never values
	case errors.Is(err, ErrInvalid):
		return apierror.BadRequest("%s", strings.TrimPrefix(err.Error(), function.ErrInvalid.Error()+": "))
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func (s *Service) putSecret(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	name := r.PathValue("name")
	if err := function.ValidSecretName(name); err != nil {
		return err
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxValueBytes))
	defer clear(value)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "a secret's value is at most %d bytes", MaxValueBytes)
	}
	if err != nil {
		return apierror.BadRequest("read the value: the body did not arrive whole")
	}
	info, err := s.Set(r.Context(), name, value)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Service) listSecrets(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	list, err := s.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"secrets": list})
}

func (s *Service) deleteSecret(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	name := r.PathValue("name")
	if err := s.Delete(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		return apierror.NotFound("secret_not_found", "no secret named %q", name)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) rotateMasterKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	res, err := s.Rewrap(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func decode(w http.ResponseWriter, r *http.Request, v any) error {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxKMSBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierror.New(http.StatusRequestEntityTooLarge, "body_too_large", "the body is over %d bytes", maxKMSBody)
		}
		// The decoder's message may quote the body: say where, not what.
		return apierror.BadRequest("send a JSON object with the documented fields")
	}
	return nil
}

func (s *Service) createKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var body struct {
		Name      string   `json:"name"`
		Functions []string `json:"functions"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	k, err := s.CreateKey(r.Context(), body.Name, body.Functions)
	if errors.Is(err, store.ErrConflict) {
		return apierror.New(http.StatusConflict, "key_exists", "a key named %q exists", body.Name)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Service) listKeys(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	keys, err := s.ListKeys(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Service) rotateKey(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	k, err := s.RotateKey(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		return apierror.NotFound("key_not_found", "no key named %q", r.PathValue("name"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}

// b64 decodes standard base64, padded or not.
func b64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, apierror.BadRequest("%s must be standard base64", field)
	}
	return b, nil
}

func (s *Service) encrypt(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var body struct {
		Plaintext string            `json:"plaintext"`
		Context   map[string]string `json:"context"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	plain, err := b64("plaintext", body.Plaintext)
	if err != nil {
		return err
	}
	defer clear(plain)
	ct, version, err := s.Encrypt(r.Context(), p, r.PathValue("key"), plain, body.Context)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"key": r.PathValue("key"), "version": version, "ciphertext": ct})
}

func (s *Service) decrypt(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var body struct {
		Ciphertext string            `json:"ciphertext"`
		Context    map[string]string `json:"context"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	ct, err := b64("ciphertext", body.Ciphertext)
	if err != nil {
		return err
	}
	plain, err := s.Decrypt(r.Context(), p, r.PathValue("key"), ct, body.Context)
	if err != nil {
		return err
	}
	defer clear(plain)
	return writeJSON(w, http.StatusOK, map[string]any{"key": r.PathValue("key"), "plaintext": plain})
}

func (s *Service) generateDataKey(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var body struct {
		Bytes   int               `json:"bytes"`
		Context map[string]string `json:"context"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	plain, sealed, version, err := s.GenerateDataKey(r.Context(), p, r.PathValue("key"), body.Bytes, body.Context)
	if err != nil {
		return err
	}
	defer clear(plain)
	return writeJSON(w, http.StatusOK, map[string]any{"key": r.PathValue("key"), "version": version, "plaintext": plain, "ciphertext": sealed})
}

// RewrapAtStart runs Rewrap once, logging rather than failing: a node that
// can't re-seal still serves with the ring.
func (s *Service) RewrapAtStart(ctx context.Context) {
	if _, err := s.Rewrap(ctx); err != nil {
		s.cfg.Log.Warn("re-seal data keys under the current master key", "err", err)
	}
}
