package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/hostless/hostless/internal/metering"
)

// UsageQuery selects a usage report; empty fields take the server's
// defaults (30d; hours up to 2 days, else days; all functions).
type UsageQuery struct {
	Since    string // 30d, 12h, 90m
	Period   string // hour or day
	Function string
}

// Usage returns the usage report of GET /v1/usage.
func (c *Client) Usage(ctx context.Context, q UsageQuery) (metering.Report, error) {
	v := url.Values{}
	for k, s := range map[string]string{"since": q.Since, "period": q.Period, "function": q.Function} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var r metering.Report
	err := c.call(ctx, http.MethodGet, "/v1/usage?"+v.Encode(), nil, &r)
	return r, err
}
