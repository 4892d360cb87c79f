package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The backend's admin endpoints: users, API keys and the dev outbox
// (internal/baas/auth), and collections (internal/baas/docdb). The types
// mirror those packages' JSON so that the CLI does not link the rule
// compiler to list users; backend_test.go checks that they agree.

// User is an account as an admin sees it.
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// UserChange is an admin's change of an account; nil fields stay.
type UserChange struct {
	Disabled *bool     `json:"disabled,omitempty"`
	Roles    *[]string `json:"roles,omitempty"`
}

// APIKey is a service key. Key, the secret, is set only in the answer
// that created it.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key,omitempty"`
}

// Mail is a message the server kept in its outbox for lack of SMTP.
type Mail struct {
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// CollectionSpec is a collection's definition, as PUT
// /v1/collections/{name} takes it (docdb.Spec).
type CollectionSpec struct {
	Schema           json.RawMessage   `json:"schema,omitempty"`
	Indexes          []string          `json:"indexes,omitempty"`
	Rules            map[string]string `json:"rules,omitempty"`
	MaxDocuments     int64             `json:"max_documents,omitempty"`
	MaxDocumentBytes int               `json:"max_document_bytes,omitempty"`
}

// Collection is a collection as the API shows it (docdb.CollectionView).
type Collection struct {
	Name      string         `json:"name"`
	Spec      CollectionSpec `json:"spec"`
	Documents int64          `json:"documents"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// MaxUsersPage is the largest page ListUsers asks for.
const MaxUsersPage = 1000

// ListUsers returns a page of at most limit accounts (0: the server's
// default) ordered by email, starting after the email after ("" from the
// start).
func (c *Client) ListUsers(ctx context.Context, after string, limit int) ([]User, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/users"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var r struct {
		Users []User `json:"users"`
	}
	err := c.call(ctx, http.MethodGet, path, nil, &r)
	return r.Users, err
}

// AllUsers pages through every account, by email.
func (c *Client) AllUsers(ctx context.Context) ([]User, error) {
	var all []User
	after := ""
	for {
		page, err := c.ListUsers(ctx, after, MaxUsersPage)
		if err != nil {
			return all, err
		}
		all = append(all, page...)
		if len(page) < MaxUsersPage {
			return all, nil
		}
		after = page[len(page)-1].Email
	}
}

// GetUser returns one account by ID.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := c.call(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(id), nil, &u)
	return u, err
}

// CreateUser makes a verified account with roles and a password ("" for
// none: the user then signs in after a password reset).
func (c *Client) CreateUser(ctx context.Context, email, password string, roles []string) (User, error) {
	if roles == nil {
		roles = []string{}
	}
	in := struct {
		Email    string   `json:"email"`
		Password string   `json:"password,omitempty"`
		Roles    []string `json:"roles"`
	}{email, password, roles}
	var u User
	err := c.call(ctx, http.MethodPost, "/v1/users", in, &u)
	return u, err
}

// UpdateUser disables or enables an account, or replaces its roles.
func (c *Client) UpdateUser(ctx context.Context, id string, ch UserChange) (User, error) {
	var u User
	err := c.call(ctx, http.MethodPatch, "/v1/users/"+url.PathEscape(id), ch, &u)
	return u, err
}

// CreateAPIKey makes a service key with scopes ("db:read", "admin", ...);
// the answer is the only one that carries its secret.
func (c *Client) CreateAPIKey(ctx context.Context, name string, scopes []string) (APIKey, error) {
	in := struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}{name, scopes}
	var k APIKey
	err := c.call(ctx, http.MethodPost, "/v1/auth/keys", in, &k)
	return k, err
}

// ListAPIKeys lists the service keys, without their secrets.
func (c *Client) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var r struct {
		Keys []APIKey `json:"keys"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/auth/keys", nil, &r)
	return r.Keys, err
}

// DeleteAPIKey revokes a service key.
func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/auth/keys/"+url.PathEscape(id), nil, nil)
}

// Outbox returns the newest mails the server kept for lack of SMTP,
// newest first.
func (c *Client) Outbox(ctx context.Context) ([]Mail, error) {
	var r struct {
		Mail []Mail `json:"mail"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/auth/outbox", nil, &r)
	return r.Mail, err
}

func collectionPath(name string) string { return "/v1/collections/" + url.PathEscape(name) }

// ListCollections lists the collections with their specs.
func (c *Client) ListCollections(ctx context.Context) ([]Collection, error) {
	var r struct {
		Collections []Collection `json:"collections"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/collections", nil, &r)
	return r.Collections, err
}

// GetCollection returns a collection's definition; IsNotFound tells a
// collection that doesn't exist.
func (c *Client) GetCollection(ctx context.Context, name string) (Collection, error) {
	var col Collection
	err := c.call(ctx, http.MethodGet, collectionPath(name), nil, &col)
	return col, err
}

// PutCollection creates or replaces a collection's definition; its
// documents stay.
func (c *Client) PutCollection(ctx context.Context, name string, spec CollectionSpec) (Collection, error) {
	var col Collection
	err := c.call(ctx, http.MethodPut, collectionPath(name), spec, &col)
	return col, err
}

// DeleteCollection deletes a collection and every document in it.
func (c *Client) DeleteCollection(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, collectionPath(name), nil, nil)
}

// BucketRules are a bucket's rules for the browser API (/v1/storage): CEL
// expressions by operation; an empty one allows admins only.
type BucketRules struct {
	Read  string `json:"read,omitempty"`
	Write string `json:"write,omitempty"`
}

func bucketPath(name string) string { return "/v1/storage/" + url.PathEscape(name) }

// CreateBucket creates a bucket of the object storage; an *Error with
// status 409 tells one that exists.
func (c *Client) CreateBucket(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPut, bucketPath(name), nil, nil)
}

// GetBucketRules returns a bucket's rules; IsNotFound tells a bucket that
// doesn't exist.
func (c *Client) GetBucketRules(ctx context.Context, name string) (BucketRules, error) {
	var r BucketRules
	err := c.call(ctx, http.MethodGet, bucketPath(name)+"/_rules", nil, &r)
	return r, err
}

// PutBucketRules replaces a bucket's rules.
func (c *Client) PutBucketRules(ctx context.Context, name string, rules BucketRules) (BucketRules, error) {
	var r BucketRules
	err := c.call(ctx, http.MethodPut, bucketPath(name)+"/_rules", rules, &r)
	return r, err
}
