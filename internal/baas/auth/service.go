// Package auth is the backend's accounts and credentials: sign-up and
// login with passwords (argon2id), access tokens (Ed25519 JWTs that expire
// in minutes, signed by keys that rotate and are published as a JWKS),
// refresh tokens that rotate on every use (presenting a spent one revokes
// its whole family), email verification and password reset by one-time
// tokens (sent through SMTP, or kept in a dev outbox), service API keys
// with scopes, roles, disabled accounts, and login throttling per account
// and per IP.
//
// Authenticate turns a request's bearer credential into a Principal, the
// one model of "who is calling" every API decides from. Verified
// credentials are cached until they expire; disabling a user or deleting
// a key takes effect at once on this node, and on other nodes of a
// cluster when the caller's access token expires (AccessTTL).
//
// Secrets (passwords, tokens, keys) never appear in a log line, an error
// message or a stored row in clear: the store keeps hashes, and the
// signing keys' private halves sealed by the master key.
//
// Package auth must never import the runtimes, the scheduler or the
// store's implementations.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/store"
)

// Config configures the service. Zero values mean the defaults.
type Config struct {
	// Project is the project whose users these are.
	Project string
	Store   store.Auth
	// Sealer seals the signing keys (the master key).
	Sealer Sealer
	Log    *slog.Logger
	// Emit publishes platform events (auth.user.created, ...); nil drops them.
	Emit func(name string, data []byte)
	// Mailer sends verification and reset mails; nil keeps them in the
	// store's dev outbox.
	Mailer Mailer
	// PublicURL is where users reach the platform, for links in mails.
	PublicURL string

	AccessTTL   time.Duration // default 15 minutes
	RefreshTTL  time.Duration // default 30 days
	KeyRotation time.Duration // how long a key signs; default 24 hours
	VerifyTTL   time.Duration // email verification tokens; default 24 hours
	ResetTTL    time.Duration // password reset tokens; default 1 hour

	// Login throttling: failed logins per account and per IP, and
	// sign-ups per IP, as a burst refilled at a rate per minute.
	LoginFailuresPerAccount Rate // default 5, then 1 a minute
	LoginFailuresPerIP      Rate // default 20, then 10 a minute
	SignupsPerIP            Rate // default 10, then 1 a minute

	// Requests limits every backend request per client IP, and per user
	// or API key once authenticated (see Caller).
	Requests RequestLimits
	// AdminKey reports whether a credential is the platform's admin key
	// (checked before tokens; nil: none is).
	AdminKey func(credential string) bool

	// Providers are the OpenID Connect providers users may sign in with
	// (see oidc.go); AllowedRedirects the app URL prefixes a sign-in may
	// return to with the tokens.
	Providers        []Provider
	AllowedRedirects []string

	// HashConcurrency bounds concurrent argon2id hashes (19 MiB each);
	// default 4.
	HashConcurrency int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Rate is a burst and a refill per minute; Burst < 0 turns the limit off.
type Rate struct {
	Burst     int     `yaml:"burst" json:"burst"`
	PerMinute float64 `yaml:"per_minute" json:"per_minute"`
}

// throttle is RPS.throttle in events per minute.
func (r Rate) throttle(def Rate) *Throttle {
	return RPS{Rate: r.PerMinute / 60, Burst: r.Burst}.throttle(RPS{Rate: def.PerMinute / 60, Burst: def.Burst})
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, 15*time.Minute)
	def(&c.RefreshTTL, 30*24*time.Hour)
	def(&c.KeyRotation, 24*time.Hour)
	def(&c.VerifyTTL, 24*time.Hour)
	def(&c.ResetTTL, time.Hour)
	if c.Project == "" {
		c.Project = function.DefaultProject
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.HashConcurrency <= 0 {
		c.HashConcurrency = 4
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is the auth service of one project. Safe for concurrent use.
type Service struct {
	cfg    Config
	keys   *keyring
	hash   *hasher
	tokens *tokenCache
	oidc   *oidcProviders

	loginAccount, loginIP, signupIP *Throttle
	reqIP, reqUser, reqKey          *Throttle

	mu sync.RWMutex
	// revoked holds, per user disabled, enabled or given other roles on
	// this node, the time of that change: access tokens issued until then are
	// refused (they may carry old roles), until they have all expired.
	revoked map[string]time.Time

	fnMu     sync.Mutex
	fnTokens map[string]fnToken // FunctionToken's cache

	stop chan struct{}
	done chan struct{}
}

// New allocates a service; Start loads the signing keys.
func New(cfg Config) *Service {
	cfg.defaults()
	return &Service{
		cfg:          cfg,
		keys:         &keyring{st: cfg.Store, seal: cfg.Sealer, rotate: cfg.KeyRotation, lifetime: cfg.AccessTTL + time.Minute},
		hash:         newHasher(cfg.HashConcurrency),
		tokens:       newTokenCache(100_000),
		oidc:         newOIDC(cfg),
		loginAccount: cfg.LoginFailuresPerAccount.throttle(Rate{Burst: 5, PerMinute: 1}),
		loginIP:      cfg.LoginFailuresPerIP.throttle(Rate{Burst: 20, PerMinute: 10}),
		signupIP:     cfg.SignupsPerIP.throttle(Rate{Burst: 10, PerMinute: 1}),
		reqIP:        cfg.Requests.PerIP.throttle(RPS{Rate: 1000, Burst: 2000}),
		reqUser:      cfg.Requests.PerUser.throttle(RPS{Rate: 200, Burst: 400}),
		reqKey:       cfg.Requests.PerKey.throttle(RPS{Rate: 2000, Burst: 4000}),
		revoked:      make(map[string]time.Time),
		fnTokens:     make(map[string]fnToken),
	}
}

// Start loads (or makes) the signing keys and reloads them every minute,
// rotating the signing key when it is due.
func (s *Service) Start(ctx context.Context) error {
	if err := s.startOIDC(); err != nil {
		return err
	}
	if err := s.keys.reload(ctx, s.now()); err != nil {
		return fmt.Errorf("auth signing keys: %w", err)
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.maintain()
	return nil
}

func (s *Service) maintain() {
	defer close(s.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.keys.reload(ctx, s.now()); err != nil {
				s.cfg.Log.Warn("reload auth signing keys", "err", err)
			}
			cancel()
			s.mu.Lock()
			now := s.now()
			for id, at := range s.revoked {
				if now.After(at.Add(s.cfg.AccessTTL + time.Minute)) {
					delete(s.revoked, id)
				}
			}
			s.mu.Unlock()
		}
	}
}

// Close stops the key maintenance.
func (s *Service) Close() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) emit(name string, v any) {
	if s.cfg.Emit == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.cfg.Emit(name, b)
}

// ResealSigningKeys re-seals, with the current master key, the signing
// keys that stale says an older one sealed (a master key rotation), and
// returns how many it re-sealed. Tokens are unaffected: the keys are the
// same. A key re-sealed or retired meanwhile by another node is skipped.
func (s *Service) ResealSigningKeys(ctx context.Context, stale func(sealed []byte) bool) (int, error) {
	ks, err := s.cfg.Store.ListSigningKeys(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range ks {
		if !stale(k.Sealed) {
			continue
		}
		plain, err := s.keys.seal.Open(k.Sealed, keyAD(k.ID))
		if err != nil {
			return n, fmt.Errorf("open signing key %s: %w", k.ID, err)
		}
		sealed, err := s.keys.seal.Seal(plain, keyAD(k.ID))
		clear(plain)
		if err != nil {
			return n, err
		}
		err = s.cfg.Store.RewrapSigningKey(ctx, k.ID, k.Sealed, sealed)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// JWKS returns the public keys that verify access tokens, ordered by ID.
func (s *Service) JWKS() []JWK {
	ks := s.keys.jwks()
	slices.SortFunc(ks, func(a, b JWK) int { return strings.Compare(a.Kid, b.Kid) })
	return ks
}

// Tokens are what a login or a refresh returns.
type Tokens struct {
	AccessToken  string   `json:"access_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int      `json:"expires_in"`
	RefreshToken string   `json:"refresh_token"`
	User         UserView `json:"user"`
}

// UserView is a user as the API shows it: never the password hash.
type UserView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Roles         []string  `json:"roles"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func view(u store.User) UserView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return UserView{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Roles: roles, Disabled: u.Disabled,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// randomToken returns n random bytes, base64url, and their SHA-256.
func randomToken(n int) (string, [32]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", [32]byte{}, err
	}
	t := base64.RawURLEncoding.EncodeToString(b)
	return t, sha256.Sum256([]byte(t)), nil
}

const maxEmailBytes = 254

// normalizeEmail checks an address and lower-cases it.
func normalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > maxEmailBytes {
		return "", apierror.BadRequest("email: give an address of at most %d bytes", maxEmailBytes)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return "", apierror.BadRequest("email: %q is not an address like name@example.com", email)
	}
	return strings.ToLower(email), nil
}

var roleRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckRoles validates role names: at most 16, each a lower-case name of
// at most 32 characters.
func CheckRoles(roles []string) error {
	if len(roles) > 16 {
		return apierror.BadRequest("roles: at most 16")
	}
	for _, r := range roles {
		if !roleRE.MatchString(r) {
			return apierror.BadRequest("roles: %q is not a role name (lower-case letters, digits, _ and -, 1-32 characters, starting with a letter)", r)
		}
	}
	return nil
}

func tooMany(what string, wait time.Duration) error {
	secs := int(wait/time.Second) + 1
	e := apierror.New(429, "too_many_requests", "too many %s; try again in %d seconds", what, secs)
	e.Header = map[string][]string{"Retry-After": {fmt.Sprint(secs)}}
	return e
}

var errCredentials = apierror.New(401, "invalid_credentials", "wrong email or password")

// Signup creates an account with a password and signs it in. A
// verification mail goes to the address.
func (s *Service) Signup(ctx context.Context, email, password, ip string) (Tokens, error) {
	now := s.now()
	if ok, wait := s.signupIP.Allow(ip, now); !ok {
		return Tokens{}, tooMany("sign-ups from this address", wait)
	}
	email, err := normalizeEmail(email)
	if err != nil {
		return Tokens{}, err
	}
	if err := CheckPassword(password, email); err != nil {
		return Tokens{}, apierror.BadRequest("password: %s", strings.TrimPrefix(err.Error(), ErrWeakPassword.Error()+": "))
	}
	u, err := s.createUser(ctx, email, password, nil, false, now)
	if err != nil {
		return Tokens{}, err
	}
	if err := s.sendVerification(ctx, u, now); err != nil {
		s.cfg.Log.WarnContext(ctx, "send the verification mail", "user", u.ID, "err", err)
	}
	return s.login(ctx, u, now)
}

func (s *Service) createUser(ctx context.Context, email, password string, roles []string, verified bool, now time.Time) (store.User, error) {
	var hash string
	if password != "" {
		var err error
		if hash, err = s.hash.Hash(ctx, password); err != nil {
			return store.User{}, err
		}
	}
	u := store.User{Project: s.cfg.Project, ID: function.NewID(now), Email: email, EmailVerified: verified,
		PasswordHash: hash, Roles: roles, CreatedAt: now, UpdatedAt: now}
	if err := s.cfg.Store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, apierror.New(409, "email_taken", "an account with that email exists; log in, or reset its password")
		}
		return store.User{}, err
	}
	s.emit("auth.user.created", map[string]any{"id": u.ID, "email": u.Email})
	return u, nil
}

// login issues a new token family for u.
func (s *Service) login(ctx context.Context, u store.User, now time.Time) (Tokens, error) {
	refresh, hash, err := randomToken(32)
	if err != nil {
		return Tokens{}, err
	}
	fam := make([]byte, 12)
	if _, err := rand.Read(fam); err != nil {
		return Tokens{}, err
	}
	rt := store.RefreshToken{Project: s.cfg.Project, Hash: hash, Family: hex.EncodeToString(fam), UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	if err := s.cfg.Store.PutRefreshToken(ctx, rt); err != nil {
		return Tokens{}, err
	}
	return s.tokensFor(u, refresh, now)
}

func (s *Service) tokensFor(u store.User, refresh string, now time.Time) (Tokens, error) {
	access, exp, err := s.issue(Principal{Kind: User, ID: u.ID, Email: u.Email, Roles: u.Roles}, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(exp.Sub(now) / time.Second),
		RefreshToken: refresh, User: view(u)}, nil
}

// Login checks a password and signs the account in. Failures are
// throttled per account and per IP; a disabled account can't log in.
func (s *Service) Login(ctx context.Context, email, password, ip string) (Tokens, error) {
	now := s.now()
	if len(email) > maxEmailBytes || len(password) > MaxPasswordBytes {
		return Tokens{}, errCredentials
	}
	email = strings.ToLower(strings.TrimSpace(email))
	// Every attempt spends a failure before the password is checked, and
	// gets it back unless the password was wrong: checking first and
	// counting after let a burst of concurrent guesses all through.
	ok, wait, refundIP := s.loginIP.spend(ip, now)
	if !ok {
		return Tokens{}, tooMany("failed logins from this address", wait)
	}
	ok, wait, refundAccount := s.loginAccount.spend(email, now)
	if !ok {
		refundIP()
		return Tokens{}, tooMany("failed logins for this account", wait)
	}
	wrong := false
	defer func() {
		if !wrong {
			refundIP()
			refundAccount()
		}
	}()
	u, err := s.cfg.Store.GetUserByEmail(ctx, s.cfg.Project, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Tokens{}, err
	}
	ok, err = s.hash.Verify(ctx, password, u.PasswordHash) // hashes even for no user
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		wrong = true
		s.cfg.Log.InfoContext(ctx, "failed login", "ip", ip)
		return Tokens{}, errCredentials
	}
	if u.Disabled {
		return Tokens{}, apierror.New(403, "account_disabled", "this account is disabled")
	}
	return s.login(ctx, u, now)
}

var errRefresh = apierror.New(401, "invalid_refresh_token", "the refresh token is not valid; log in again")

// Refresh rotates a refresh token: the old one is spent, a new one and a
// new access token come back. A spent token presented again revokes its
// whole family (someone holds a copy).
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	now := s.now()
	if refresh == "" || len(refresh) > 128 {
		return Tokens{}, errRefresh
	}
	next, nextHash, err := randomToken(32)
	if err != nil {
		return Tokens{}, err
	}
	old, err := s.cfg.Store.RotateRefreshToken(ctx, s.cfg.Project, sha256.Sum256([]byte(refresh)),
		store.RefreshToken{Hash: nextHash, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}, now)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.cfg.Log.WarnContext(ctx, "a spent refresh token was presented again; its family is revoked", "user", old.UserID)
		s.emit("auth.token.reused", map[string]any{"id": old.UserID})
		return Tokens{}, apierror.New(401, "refresh_token_reused", "this refresh token was already used: every session of its login is signed out; log in again")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrTokenExpired):
		return Tokens{}, errRefresh
	case err != nil:
		return Tokens{}, err
	}
	u, err := s.cfg.Store.GetUser(ctx, s.cfg.Project, old.UserID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Tokens{}, errRefresh
		}
		return Tokens{}, err
	}
	if u.Disabled {
		return Tokens{}, apierror.New(403, "account_disabled", "this account is disabled")
	}
	return s.tokensFor(u, next, now)
}

// Logout revokes the refresh token's family: that login's sessions end
// when their access tokens expire.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	if refresh == "" || len(refresh) > 128 {
		return errRefresh
	}
	if _, err := s.cfg.Store.RevokeRefreshToken(ctx, s.cfg.Project, sha256.Sum256([]byte(refresh))); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errRefresh
		}
		return err
	}
	return nil
}

// User returns an account.
func (s *Service) User(ctx context.Context, id string) (UserView, error) {
	u, err := s.cfg.Store.GetUser(ctx, s.cfg.Project, id)
	if errors.Is(err, store.ErrNotFound) {
		return UserView{}, apierror.NotFound("user_not_found", "no user with ID %q", id)
	}
	return view(u), err
}

// CreateUser makes an account as an admin: verified, with roles, and a
// password (or none: the user then signs in by reset or an identity
// provider).
func (s *Service) CreateUser(ctx context.Context, email, password string, roles []string) (UserView, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return UserView{}, err
	}
	if password != "" {
		if err := CheckPassword(password, email); err != nil {
			return UserView{}, apierror.BadRequest("password: %s", strings.TrimPrefix(err.Error(), ErrWeakPassword.Error()+": "))
		}
	}
	if err := CheckRoles(roles); err != nil {
		return UserView{}, err
	}
	u, err := s.createUser(ctx, email, password, roles, true, s.now())
	return view(u), err
}

// ListUsers pages through the accounts by email.
func (s *Service) ListUsers(ctx context.Context, after string, limit int) ([]UserView, error) {
	us, err := s.cfg.Store.ListUsers(ctx, s.cfg.Project, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]UserView, len(us))
	for i, u := range us {
		out[i] = view(u)
	}
	return out, nil
}

// UserChange is an admin's change of an account; nil fields stay.
type UserChange struct {
	Disabled *bool     `json:"disabled"`
	Roles    *[]string `json:"roles"`
}

// UpdateUser applies an admin's change. Disabling revokes every refresh
// token and refuses the user's access tokens on this node at once.
func (s *Service) UpdateUser(ctx context.Context, id string, c UserChange) (UserView, error) {
	if c.Roles != nil {
		if err := CheckRoles(*c.Roles); err != nil {
			return UserView{}, err
		}
	}
	now := s.now()
	u, err := s.cfg.Store.UpdateUser(ctx, s.cfg.Project, id, func(u *store.User) error {
		if c.Disabled != nil {
			u.Disabled = *c.Disabled
		}
		if c.Roles != nil {
			u.Roles = *c.Roles
		}
		u.UpdatedAt = now
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return UserView{}, apierror.NotFound("user_not_found", "no user with ID %q", id)
	}
	if err != nil {
		return UserView{}, err
	}
	// The user's tokens may carry what no longer holds (disabled, old
	// roles): refuse those issued until now; a refresh brings the new
	// roles. Enabling lifts a disabling's refusal.
	s.mu.Lock()
	if c.Roles != nil || u.Disabled {
		s.revoked[u.ID] = now
	} else {
		delete(s.revoked, u.ID)
	}
	s.mu.Unlock()
	s.tokens.drop(User, u.ID)
	if c.Disabled != nil {
		if u.Disabled {
			s.tokens.drop(User, u.ID)
			if err := s.cfg.Store.RevokeUserTokens(ctx, s.cfg.Project, u.ID); err != nil {
				return UserView{}, err
			}
			s.emit("auth.user.disabled", map[string]any{"id": u.ID, "email": u.Email})
		} else {
			s.emit("auth.user.enabled", map[string]any{"id": u.ID, "email": u.Email})
		}
	}
	return view(u), nil
}
