package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SecretInfo is what the API shows of a secret: never its value.
type SecretInfo struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SetSecret stores value as the secret's next version. The value goes in
// the request body only.
func (c *Client) SetSecret(ctx context.Context, name string, value io.Reader) (SecretInfo, error) {
	var info SecretInfo
	resp, err := c.do(ctx, http.MethodPut, "/v1/secrets/"+url.PathEscape(name), value, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		return info, err
	}
	if resp.StatusCode >= 300 {
		return info, decodeError(resp)
	}
	defer resp.Body.Close()
	return info, decodeJSON(resp.Body, &info)
}

// ListSecrets lists the secrets' names, versions and times.
func (c *Client) ListSecrets(ctx context.Context) ([]SecretInfo, error) {
	var r struct {
		Secrets []SecretInfo `json:"secrets"`
	}
	err := c.call(ctx, http.MethodGet, "/v1/secrets", nil, &r)
	return r.Secrets, err
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), nil, nil)
}

// RewrapResult says what a master key rotation re-sealed.
type RewrapResult struct {
	MasterKeyID string `json:"master_key_id"`
	Secrets     int    `json:"secrets"`
	KMSKeys     int    `json:"kms_keys"`
	// PlatformKeys are the platform's own sealed keys (auth signing keys,
	// the stored AWS key, the presigning key).
	PlatformKeys int `json:"platform_keys"`
}

// RotateMasterKey re-seals every data key under the server's current
// master key.
func (c *Client) RotateMasterKey(ctx context.Context) (RewrapResult, error) {
	var r RewrapResult
	err := c.call(ctx, http.MethodPost, "/v1/secrets/rotate-master-key", nil, &r)
	return r, err
}

func decodeJSON(r io.Reader, out any) error { return json.NewDecoder(r).Decode(out) }
