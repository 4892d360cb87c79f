package app

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hostless/hostless/internal/store"
)

// s3Server is the S3-compatible API on its own listener.
type s3Server struct {
	srv    *http.Server
	ln     net.Listener
	url    string
	served chan struct{}
}

// startS3 serves the S3 API on cfg.S3Addr, if set, over the object storage
// of startStorage, every request signed with the managed AWS access key
// pair that the Lambda API accepts too. Call it after lambdaAuth, which
// stores that pair, and startStorage.
func (a *App) startS3(ctx context.Context) error {
	if a.cfg.S3Addr == "" {
		return nil
	}
	id, _, err := a.storedAWSKey(ctx)
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("s3-addr: the S3 API needs an access key pair: set HOSTLESS_AWS_ACCESS_KEY_ID and HOSTLESS_AWS_SECRET_ACCESS_KEY (stored sealed, so later starts need neither)")
	}
	h := a.objects
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", a.cfg.S3Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.S3Addr, err)
	}
	scheme := "http"
	if a.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
		scheme = "https"
	}
	s := &s3Server{srv: srv, ln: ln, url: scheme + "://" + ln.Addr().String(), served: make(chan struct{})}
	go func() {
		defer close(s.served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("s3 server", "err", err)
		}
	}()
	a.s3 = s
	a.log.Info("S3 API listening", "url", s.url)
	return nil
}

// closeS3 stops the S3 listener and its requests; it waits for them, so
// the store can close after it.
func (a *App) closeS3() {
	if a.s3 == nil {
		return
	}
	_ = a.s3.srv.Close()
	<-a.s3.served
	a.s3 = nil
}

// S3URL is the S3 API's base URL, or "" when it is not served.
func (a *App) S3URL() string {
	if a.s3 == nil {
		return ""
	}
	return a.s3.url
}

// storedAWSKey returns the managed access key pair, unsealed; empty
// without one.
func (a *App) storedAWSKey(ctx context.Context) (id, secret string, err error) {
	id, err = a.store.GetSetting(ctx, awsKeyIDSetting)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	b64, err := a.store.GetSetting(ctx, awsKeySecretSetting+id)
	if err != nil {
		return "", "", fmt.Errorf("the stored AWS access key %s: %w", id, err)
	}
	sealed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", fmt.Errorf("the stored AWS access key %s is corrupt", id)
	}
	plain, err := a.masterKey.Open(sealed, []byte(awsKeySecretSetting+id))
	if err != nil {
		return "", "", fmt.Errorf("the stored AWS access key %s can't be read with this master key (%s): %w", id, a.masterKey.ID(), err)
	}
	return id, string(plain), nil
}
