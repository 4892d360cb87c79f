package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Mailer sends a mail.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// SMTP sends mail through an SMTP server, with STARTTLS when the server
// offers it (required unless the server is on loopback) and PLAIN auth
// when the URL has a user.
type SMTP struct {
	Addr     string // host:port
	From     string
	User     string
	Password string
	// TLS, when set, configures STARTTLS (tests trust their own CA).
	TLS *tls.Config
}

// String and LogValue show where mail goes, never the password.
func (m *SMTP) String() string { return "smtp://" + m.Addr + "?from=" + m.From }

// LogValue implements slog.LogValuer.
func (m *SMTP) LogValue() slog.Value { return slog.StringValue(m.String()) }

// ParseSMTP reads smtp://user:password@host:port?from=addr. The password
// never appears in an error.
func ParseSMTP(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Host == "" {
		return nil, errors.New("smtp: want smtp://[user:password@]host:port?from=address")
	}
	from := u.Query().Get("from")
	if _, err := normalizeEmail(from); err != nil {
		return nil, errors.New("smtp: set the sender as ?from=address")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "587")
	}
	s := &SMTP{Addr: host, From: from}
	if u.User != nil {
		s.User = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// Send delivers one plain-text mail, within ctx's deadline (30 s if none).
func (m *SMTP) Send(ctx context.Context, to, subject, body string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := m.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	} else if !isLoopback(conn.RemoteAddr()) {
		// The mails carry sign-in tokens: a server (or a man in the
		// middle stripping STARTTLS) must not get them in clear.
		return fmt.Errorf("smtp: %s offers no STARTTLS; mail goes in clear only to a server on loopback", m.Addr)
	}
	if m.User != "" {
		// smtp.PlainAuth refuses to send the password without TLS except
		// to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.User, m.Password, host)); err != nil {
			return errors.New("smtp: authentication failed")
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("smtp MAIL: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", err)
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(body, "\n", "\r\n")
	if _, err := w.Write([]byte(msg)); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return c.Quit()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// send mails through the Mailer, or keeps the mail in the dev outbox.
func (s *Service) send(ctx context.Context, to, subject, body string, now time.Time) error {
	if s.cfg.Mailer != nil {
		return s.cfg.Mailer.Send(ctx, to, subject, body)
	}
	return s.cfg.Store.PutMail(ctx, store.Mail{Project: s.cfg.Project, ID: function.NewID(now), To: to,
		Subject: subject, Body: body, CreatedAt: now})
}

// Outbox returns the newest mails kept for lack of SMTP.
func (s *Service) Outbox(ctx context.Context, limit int) ([]store.Mail, error) {
	return s.cfg.Store.ListMail(ctx, s.cfg.Project, limit)
}

func (s *Service) link(path, token string) string {
	if s.cfg.PublicURL == "" {
		return ""
	}
	return "\n\nOr open: " + strings.TrimRight(s.cfg.PublicURL, "/") + path + "?token=" + token
}

// mailToken stores a one-time token of purpose for u, valid for ttl, and
// mails it: body has %s for the validity, then %s for the token; path is
// where the link (with PublicURL) points.
func (s *Service) mailToken(ctx context.Context, u store.User, purpose string, ttl time.Duration, subject, body, path string, now time.Time) error {
	tok, hash, err := randomToken(24)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.PutOneTimeToken(ctx, store.OneTimeToken{Project: s.cfg.Project, Hash: hash, UserID: u.ID,
		Purpose: purpose, ExpiresAt: now.Add(ttl)}); err != nil {
		return err
	}
	return s.send(ctx, u.Email, subject, fmt.Sprintf(body, ttl, tok)+s.link(path, tok), now)
}

func (s *Service) sendVerification(ctx context.Context, u store.User, now time.Time) error {
	return s.mailToken(ctx, u, "verify", s.cfg.VerifyTTL, "Confirm your email address",
		"Confirm your email address with this token (valid for %s):\n\n%s\n\nSend it as POST /v1/auth/verify {\"token\": \"...\"}.",
		"/v1/auth/verify", now)
}

// RequestVerification sends a new verification mail to a signed-in user,
// throttled per account like sign-ups per IP: the address is not
// verified yet, so it may be anyone's.
func (s *Service) RequestVerification(ctx context.Context, userID string) error {
	if ok, wait := s.signupIP.Allow("verify:"+userID, s.now()); !ok {
		return tooMany("verification mails for this account", wait)
	}
	u, err := s.cfg.Store.GetUser(ctx, s.cfg.Project, userID)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return apierror.New(409, "already_verified", "the email address is verified already")
	}
	return s.sendVerification(ctx, u, s.now())
}

var errOneTime = apierror.New(400, "invalid_token", "the token is not valid, was used already, or has expired; request a new one")

// Verify spends an email verification token.
func (s *Service) Verify(ctx context.Context, token string) (UserView, error) {
	if token == "" || len(token) > 128 {
		return UserView{}, errOneTime
	}
	now := s.now()
	t, err := s.cfg.Store.UseOneTimeToken(ctx, s.cfg.Project, hashToken(token), "verify", now)
	if err != nil {
		if isTokenErr(err) {
			return UserView{}, errOneTime
		}
		return UserView{}, err
	}
	u, err := s.cfg.Store.UpdateUser(ctx, s.cfg.Project, t.UserID, func(u *store.User) error {
		u.EmailVerified, u.UpdatedAt = true, now
		return nil
	})
	if err != nil {
		return UserView{}, err
	}
	s.emit("auth.user.verified", map[string]any{"id": u.ID, "email": u.Email})
	return view(u), nil
}

// RequestReset mails a password reset token if the account exists. It
// answers the same either way, so that it tells no one which emails have
// accounts; it is throttled like sign-ups.
func (s *Service) RequestReset(ctx context.Context, email, ip string) error {
	now := s.now()
	if ok, wait := s.signupIP.Allow(ip, now); !ok {
		return tooMany("reset requests from this address", wait)
	}
	email, err := normalizeEmail(email)
	if err != nil {
		return err
	}
	u, err := s.cfg.Store.GetUserByEmail(ctx, s.cfg.Project, email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.mailToken(ctx, u, "reset", s.cfg.ResetTTL, "Reset your password",
		"Someone asked to reset the password of this account. If it was you, use this token (valid for %s):\n\n%s\n\nSend it as POST /v1/auth/reset {\"token\": \"...\", \"password\": \"...\"}. If it wasn't you, ignore this mail.",
		"/v1/auth/reset", now)
}

// Reset spends a reset token and sets a new password; every session of
// the account is signed out, and the address counts as verified (the
// mail reached it).
func (s *Service) Reset(ctx context.Context, token, password string) error {
	if token == "" || len(token) > 128 {
		return errOneTime
	}
	now := s.now()
	t, err := s.cfg.Store.UseOneTimeToken(ctx, s.cfg.Project, hashToken(token), "reset", now)
	if err != nil {
		if isTokenErr(err) {
			return errOneTime
		}
		return err
	}
	u, err := s.cfg.Store.GetUser(ctx, s.cfg.Project, t.UserID)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, u.Email); err != nil {
		return apierror.BadRequest("password: %s (the token is spent: request a new one)", strings.TrimPrefix(err.Error(), ErrWeakPassword.Error()+": "))
	}
	hash, err := s.hash.Hash(ctx, password)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Store.UpdateUser(ctx, s.cfg.Project, u.ID, func(u *store.User) error {
		u.PasswordHash, u.EmailVerified, u.UpdatedAt = hash, true, now
		return nil
	}); err != nil {
		return err
	}
	if err := s.cfg.Store.RevokeUserTokens(ctx, s.cfg.Project, u.ID); err != nil {
		return err
	}
	s.emit("auth.password.reset", map[string]any{"id": u.ID, "email": u.Email})
	return nil
}

func isTokenErr(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTokenReused) || errors.Is(err, store.ErrTokenExpired)
}
