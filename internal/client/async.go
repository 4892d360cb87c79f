package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// InvokeAsync queues a call of a function (NAME, NAME@VERSION or
// NAME@ALIAS) and returns its invocation ID once the server stored it; an
// idempotency key already used within the window returns the first ID.
func (c *Client) InvokeAsync(ctx context.Context, name string, body []byte, idempotencyKey string) (string, error) {
	h := http.Header{"X-Hostless-Invocation-Type": {"Event"}}
	if json.Valid(body) && len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/invoke", bytes.NewReader(body), h)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", decodeError(resp)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Hostless-Invocation-Id"), nil
}

// GetInvocationJSON returns what the server holds of an invocation, as
// it answers it: a record with its logs, or an async invocation's state.
func (c *Client) GetInvocationJSON(ctx context.Context, id string) (json.RawMessage, error) {
	var r json.RawMessage
	err := c.call(ctx, http.MethodGet, "/v1/invocations/"+url.PathEscape(id), nil, &r)
	return r, err
}

// DeadLetter is a failed event in a function's dead-letter queue.
type DeadLetter struct {
	ID         string    `json:"id"`
	Function   string    `json:"function"`
	Trigger    string    `json:"trigger"`
	AcceptedAt time.Time `json:"accepted_at"`
	FailedAt   time.Time `json:"failed_at"`
	Attempts   int       `json:"attempts"`
	Reason     string    `json:"reason"`
	Bytes      int       `json:"bytes"`
}

// DeadLetters lists up to limit of a function's dead letters, oldest first.
func (c *Client) DeadLetters(ctx context.Context, name string, limit int) ([]DeadLetter, error) {
	var r struct {
		DeadLetters []DeadLetter `json:"dead_letters"`
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	err := c.call(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name)+"/dlq?"+q.Encode(), nil, &r)
	return r.DeadLetters, err
}

// Redrive queues a function's dead letters again and returns how many.
func (c *Client) Redrive(ctx context.Context, name string) (int, error) {
	var r struct {
		Redriven int `json:"redriven"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(name)+"/dlq/redrive", nil, &r)
	return r.Redriven, err
}
