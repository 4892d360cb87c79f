package client

import (
	"context"
	"net/http"

	"github.com/hostless/hostless/internal/function"
)

// routesDoc is the body of GET and PUT /v1/routes.
type routesDoc struct {
	Routes []function.Route `json:"routes"`
}

// GetRoutes returns the route table.
func (c *Client) GetRoutes(ctx context.Context) ([]function.Route, error) {
	var r routesDoc
	err := c.call(ctx, http.MethodGet, "/v1/routes", nil, &r)
	return r.Routes, err
}

// PutRoutes replaces the whole route table; an empty list removes every
// route. It returns the table as stored.
func (c *Client) PutRoutes(ctx context.Context, routes []function.Route) ([]function.Route, error) {
	if routes == nil {
		routes = []function.Route{}
	}
	var r routesDoc
	err := c.call(ctx, http.MethodPut, "/v1/routes", routesDoc{Routes: routes}, &r)
	return r.Routes, err
}
