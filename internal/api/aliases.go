package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// aliasErr maps a store error of an alias operation to its HTTP error.
// Errors a change function returned (apierror.Error) pass through.
func aliasErr(name, alias string, err error) error {
	if e, ok := errors.AsType[*apierror.Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, store.ErrDeleteLive):
		return apierror.New(http.StatusBadRequest, "cannot_delete_live",
			"the alias live serves /fn/%s and can't be deleted: point it at another version (hostless alias set %s live --version N), or delete the function", name, name)
	case errors.Is(err, function.ErrAliasNotFound):
		return apierror.NotFound("alias_not_found", "function %q has no alias %q", name, alias)
	case errors.Is(err, function.ErrVersionNotFound):
		if ve, ok := errors.AsType[*function.VersionNotFoundError](err); ok {
			return apierror.NotFound("version_not_found", "%s", ve.Error())
		}
		return apierror.NotFound("version_not_found", "function %q has no such version", name)
	case errors.Is(err, store.ErrNotFound):
		return fnNotFound(name)
	case errors.Is(err, function.ErrInvalid):
		return apierror.BadRequest("alias %q: %s", alias, invalidMessage(err))
	}
	return err
}

// invalidMessage is the part of a validation error that says what to fix.
func invalidMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, function.ErrInvalid.Error()+": "); i >= 0 {
		msg = msg[i+len(function.ErrInvalid.Error())+2:]
	}
	return msg
}

// aliasName reads and checks the alias of the path.
func aliasName(r *http.Request) (string, error) {
	alias := r.PathValue("alias")
	if err := function.ValidAliasName(alias); err != nil {
		return "", apierror.BadRequest("%s", invalidMessage(err))
	}
	return alias, nil
}

func (a *API) listAliases(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	as, err := a.cfg.Store.ListAliases(r.Context(), function.DefaultProject, name)
	if err != nil {
		return storeErr(name, err)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"aliases": as})
}

func (a *API) getAlias(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	alias, err := aliasName(r)
	if err != nil {
		return err
	}
	got, err := a.cfg.Store.GetAlias(r.Context(), function.DefaultProject, name, alias)
	if err != nil {
		return aliasErr(name, alias, err)
	}
	return writeJSON(w, http.StatusOK, got)
}

// putAlias creates or replaces an alias from {"version": N} or
// {"version": N, "canary_version": M, "canary_weight": W}. The other
// fields of an alias as GET answers it are accepted and ignored, so a
// client can send back what it read; a name other than the path's is
// refused.
func (a *API) putAlias(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	alias, err := aliasName(r)
	if err != nil {
		return err
	}
	var body function.Alias
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Name != "" && body.Name != alias {
		return apierror.BadRequest("the body names alias %q, the path %q: rename by creating the new alias and deleting the old", body.Name, alias)
	}
	body.Name = alias
	if err := body.Validate(); err != nil {
		return apierror.BadRequest("alias %q: %s", alias, invalidMessage(err))
	}
	a.deployMu.Lock()
	got, created, err := a.cfg.Store.PutAlias(r.Context(), function.DefaultProject, name, body)
	if err == nil {
		a.cfg.Invoker.Changed(function.DefaultProject, name)
	}
	a.deployMu.Unlock()
	if err != nil {
		return aliasErr(name, alias, err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, got)
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	alias, err := aliasName(r)
	if err != nil {
		return err
	}
	a.deployMu.Lock()
	err = a.cfg.Store.DeleteAlias(r.Context(), function.DefaultProject, name, alias)
	if err == nil {
		a.cfg.Invoker.Changed(function.DefaultProject, name)
	}
	a.deployMu.Unlock()
	if err != nil {
		return aliasErr(name, alias, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// promote makes an alias's canary its version, serving every call; 409
// no_canary when it has none.
func (a *API) promote(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	alias, err := aliasName(r)
	if err != nil {
		return err
	}
	a.deployMu.Lock()
	defer a.deployMu.Unlock()
	got, err := a.cfg.Store.UpdateAlias(r.Context(), function.DefaultProject, name, alias, func(al *function.Alias) error {
		if !al.HasCanary() {
			return apierror.New(http.StatusConflict, "no_canary",
				"alias %q of function %q has no canary to promote: it serves version %d alone", alias, name, al.Version)
		}
		al.Version, al.CanaryVersion, al.CanaryWeight = al.CanaryVersion, 0, 0
		return nil
	})
	if err != nil {
		return aliasErr(name, alias, err)
	}
	a.cfg.Invoker.Changed(function.DefaultProject, name)
	return writeJSON(w, http.StatusOK, got)
}

// canaryWeight reads a deploy's ?canary=W: 0 without one.
func canaryWeight(r *http.Request) (int, error) {
	s := r.URL.Query().Get("canary")
	if s == "" {
		return 0, nil
	}
	w, err := strconv.Atoi(s)
	if err != nil || w < function.MinCanaryWeight || w > function.MaxCanaryWeight {
		return 0, apierror.BadRequest("canary=%q: the canary's weight is a whole percent of live's calls, %d to %d",
			s, function.MinCanaryWeight, function.MaxCanaryWeight)
	}
	return w, nil
}

// rollbackTarget moves the live alias back: with a canary, to its version
// alone (the canary is dropped); else to the version before it; or to the
// version asked for, alone.
func rollbackTarget(name string, to int) func(*function.Alias) error {
	return func(al *function.Alias) error {
		switch {
		case to > 0:
			al.Version = to
		case al.HasCanary():
		case al.Version <= 1:
			return apierror.New(http.StatusConflict, "no_earlier_version",
				"function %q serves version %d, its oldest: nothing to roll back to", name, al.Version)
		default:
			// Versions are numbered without gaps and never deleted alone.
			al.Version--
		}
		al.CanaryVersion, al.CanaryWeight = 0, 0
		return nil
	}
}
