package sigv4_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/hostless/hostless/internal/sigv4"
)

// TestVerifySession: temporary credentials (a key, its secret and a
// session token, signed by aws-sdk-go-v2 as Lambda functions' SDKs sign
// them) verify through LookupSession, whose session value reaches Auth;
// a token that is wrong, unsigned or missing does not.
func TestVerifySession(t *testing.T) {
	t.Parallel()
	const (
		tmpKey, tmpSecret, token = "ASIATESTSESSION00001", "session-secret", "tok-1"
		longKey, longSecret      = "AKIDLONGTERM", "long-secret"
	)
	v := &sigv4.Verifier{
		Service: "s3", S3: true,
		Lookup: func(id string) (string, bool) { return longSecret, id == longKey },
		LookupSession: func(id, tok string) (string, any, bool) {
			if id == tmpKey && tok == token {
				return tmpSecret, "grant-of-tok-1", true
			}
			return "", nil, false
		},
	}
	signer := v4.NewSigner()
	sign := func(t *testing.T, creds aws.Credentials) *http.Request {
		r := httptest.NewRequest("GET", "http://s3.test/bucket/key", nil)
		r.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
		if err := signer.SignHTTP(context.Background(), creds, r, sigv4.UnsignedPayload, "s3", "us-east-1", signTime); err != nil {
			t.Fatal(err)
		}
		return r
	}
	session := aws.Credentials{AccessKeyID: tmpKey, SecretAccessKey: tmpSecret, SessionToken: token}

	t.Run("header", func(t *testing.T) {
		r := sign(t, session)
		if r.Header.Get("X-Amz-Security-Token") != token {
			t.Fatal("the SDK did not send the token")
		}
		auth, err := v.Verify(r, signTime)
		if err != nil {
			t.Fatal(err)
		}
		if auth.Session != "grant-of-tok-1" || auth.AccessKeyID != tmpKey {
			t.Errorf("Session = %v, key %s; want the session's value", auth.Session, auth.AccessKeyID)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		r := httptest.NewRequest("GET", "http://s3.test/bucket/key?X-Amz-Expires=300", nil)
		u, _, err := signer.PresignHTTP(context.Background(), session, r, sigv4.UnsignedPayload, "s3", "us-east-1", signTime)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := v.Verify(httptest.NewRequest("GET", u, nil), signTime)
		if err != nil {
			t.Fatal(err)
		}
		if auth.Session != "grant-of-tok-1" {
			t.Errorf("Session = %v", auth.Session)
		}
	})
	t.Run("long-term key alongside", func(t *testing.T) {
		auth, err := v.Verify(sign(t, aws.Credentials{AccessKeyID: longKey, SecretAccessKey: longSecret}), signTime)
		if err != nil {
			t.Fatal(err)
		}
		if auth.Session != nil {
			t.Errorf("Session = %v for a long-term key", auth.Session)
		}
	})
	for _, tt := range []struct {
		name string
		req  func(t *testing.T) *http.Request
		want *sigv4.Error
	}{
		{"another token", func(t *testing.T) *http.Request {
			return sign(t, aws.Credentials{AccessKeyID: tmpKey, SecretAccessKey: tmpSecret, SessionToken: "tok-2"})
		}, sigv4.ErrInvalidToken},
		{"the token left out of the signature", func(t *testing.T) *http.Request {
			r := sign(t, aws.Credentials{AccessKeyID: tmpKey, SecretAccessKey: tmpSecret})
			r.Header.Set("X-Amz-Security-Token", token)
			return r
		}, sigv4.ErrInvalidToken},
		{"without the token", func(t *testing.T) *http.Request {
			return sign(t, aws.Credentials{AccessKeyID: tmpKey, SecretAccessKey: tmpSecret})
		}, sigv4.ErrInvalidAccessKeyID},
		{"the token swapped after signing", func(t *testing.T) *http.Request {
			r := sign(t, aws.Credentials{AccessKeyID: tmpKey, SecretAccessKey: tmpSecret, SessionToken: "tok-2"})
			r.Header.Set("X-Amz-Security-Token", token)
			return r
		}, sigv4.ErrSignatureDoesNotMatch},
		{"a long-term key with a token", func(t *testing.T) *http.Request {
			return sign(t, aws.Credentials{AccessKeyID: longKey, SecretAccessKey: longSecret, SessionToken: token})
		}, sigv4.ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.req(t), signTime)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
