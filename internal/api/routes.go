package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/route"
	"github.com/hostless/hostless/internal/store"
)

// Routes stores and serves the route table (the route package's Syncer).
type Routes interface {
	// Replace compiles, stores and serves a whole table; a table that
	// does not compile fails with a *route.Error.
	Replace(ctx context.Context, routes []route.Route) (*route.Table, error)
	// Stored returns the stored table.
	Stored(ctx context.Context) ([]route.Route, error)
}

// RoutesSetting is the setting that holds the route table.
const RoutesSetting = "routes"

func (a *API) getRoutes(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Routes == nil {
		return apierror.NotFound("not_found", "routes are not available on this server")
	}
	routes, err := a.cfg.Routes.Stored(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, route.Document{Routes: routes})
}

// putRoutes replaces the whole route table: {"routes": [...]}. A table that
// doesn't compile, or whose route names a function (or its alias or
// version) that doesn't exist, is refused with 400 and changes nothing.
func (a *API) putRoutes(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Routes == nil {
		return apierror.NotFound("not_found", "routes are not available on this server")
	}
	var doc route.Document
	if err := decodeJSON(r, &doc); err != nil {
		return err
	}
	if doc.Routes == nil {
		return apierror.BadRequest(`the body must be {"routes": [...]}; an empty list removes every route`)
	}
	if len(doc.Routes) > route.MaxRoutes {
		return apierror.BadRequest("%d routes (at most %d)", len(doc.Routes), route.MaxRoutes)
	}
	// Compile first: a table that doesn't compile is refused without a
	// store query per route.
	if _, err := route.Compile(doc.Routes); err != nil {
		return apierror.New(http.StatusBadRequest, "invalid_routes", "%s", invalidMessage(err))
	}
	if err := a.routeTargets(r.Context(), doc.Routes); err != nil {
		return err
	}
	t, err := a.cfg.Routes.Replace(r.Context(), doc.Routes)
	if errors.Is(err, function.ErrInvalid) {
		return apierror.New(http.StatusBadRequest, "invalid_routes", "%s", invalidMessage(err))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, route.Document{Routes: t.Routes()})
}

// routeTargets checks that what each route names exists now. A function
// deleted later leaves its routes in place; they answer 404 until it is
// deployed again.
func (a *API) routeTargets(ctx context.Context, routes []route.Route) error {
	checked := map[string]bool{}
	for i, rt := range routes {
		if checked[rt.Function] {
			continue
		}
		checked[rt.Function] = true
		name, at, pinned := strings.Cut(rt.Function, "@")
		var err error
		what := fmt.Sprintf("function %q", name)
		switch alias, version := function.ParseRef(at); {
		case !pinned:
			_, err = a.cfg.Store.GetFunction(ctx, function.DefaultProject, name)
		case alias != "":
			what = fmt.Sprintf("alias %q of function %q", alias, name)
			_, err = a.cfg.Store.GetAlias(ctx, function.DefaultProject, name, alias)
		default:
			what = fmt.Sprintf("version %d of function %q", version, name)
			_, err = a.cfg.Store.GetVersion(ctx, function.DefaultProject, name, version)
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, function.ErrAliasNotFound) || errors.Is(err, function.ErrVersionNotFound) {
			return apierror.New(http.StatusBadRequest, "invalid_routes", "routes[%d]: %s does not exist; deploy it before its routes", i, what)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
