package auth

// Sign-in through OpenID Connect providers: the authorization code flow
// with PKCE, a state and a nonce. The platform is the provider's client
// (confidential, with a client secret, or public with PKCE alone); the
// app is a browser app that gets the platform's own tokens back in its
// redirect URL's fragment.
//
// The state the browser carries is sealed by the master key: it holds
// the PKCE verifier, the nonce, the app's redirect URL and the provider's
// name (also bound as associated data), so no node needs to remember it,
// and a tampered state, or one made for another provider, does not open.
// Its random ID is also stored as a one-time token: a state works once,
// for 10 minutes, on any node of a cluster.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hostless/hostless/internal/apierror"
	"github.com/hostless/hostless/internal/store"
)

// Provider is an OpenID Connect identity provider users may sign in with.
// Register the platform with it as a web application whose redirect URL
// is PUBLIC_URL/v1/auth/oidc/NAME/callback.
type Provider struct {
	// Name names the provider in URLs: a DNS label ("google", "corp").
	Name string `yaml:"name" json:"name"`
	// Issuer is the provider's issuer URL; its configuration is discovered
	// at Issuer/.well-known/openid-configuration. HTTPS, except on a
	// loopback host.
	Issuer string `yaml:"issuer" json:"issuer"`
	// ClientID and ClientSecret are the platform's credentials at the
	// provider. The secret may be empty for a public client (PKCE alone).
	ClientID     string `yaml:"client_id" json:"client_id"`
	ClientSecret Secret `yaml:"client_secret" json:"client_secret"`
	// Scopes are asked for; default openid, email, profile. openid is
	// always asked for.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// Secret is a credential in a config: it prints, logs and marshals as
// "[hidden]", so a config dump or a log line never shows it. string(s)
// is its value.
type Secret string

const hidden = "[hidden]"

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return hidden
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON hides the secret: a config written back has no secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML hides the secret (gopkg.in/yaml.v3's Marshaler).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// String shows the provider without its secret.
func (p Provider) String() string {
	return fmt.Sprintf("oidc provider %s (issuer %s, client %s)", p.Name, p.Issuer, p.ClientID)
}

// LogValue logs the provider without its secret.
func (p Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", p.Name), slog.String("issuer", p.Issuer), slog.String("client_id", p.ClientID))
}

var providerNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate checks a provider's config; errors name the field.
func (p Provider) Validate() error {
	if !providerNameRE.MatchString(p.Name) {
		return fmt.Errorf("name: %q is not a DNS label (1-63 lower-case letters, digits and -, not starting or ending with -)", p.Name)
	}
	u, err := url.Parse(p.Issuer)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("provider %s: issuer: %q is not a URL like https://accounts.example.com", p.Name, p.Issuer)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		return fmt.Errorf("provider %s: issuer: %q must be https (http only on a loopback host)", p.Name, p.Issuer)
	}
	if p.ClientID == "" {
		return fmt.Errorf("provider %s: client_id: give the platform's client ID at the provider", p.Name)
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("provider %s: scopes: %q is not a scope", p.Name, s)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateProviders checks providers and the allowed redirect URL
// prefixes, as Start does.
func ValidateProviders(providers []Provider, allowedRedirects []string) error {
	seen := make(map[string]bool)
	for i, p := range providers {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("providers[%d]: %w", i, err)
		}
		if seen[p.Name] {
			return fmt.Errorf("providers[%d]: name: %q is given twice", i, p.Name)
		}
		seen[p.Name] = true
	}
	for i, a := range allowedRedirects {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("allowed_redirects[%d]: %q is not a URL prefix like https://app.example.com/auth/", i, a)
		}
	}
	if len(providers) > 0 && len(allowedRedirects) == 0 {
		return errors.New("allowed_redirects: give the app URLs (prefixes) that sign-ins may return to")
	}
	return nil
}

// oidcStateTTL is how long a sign-in may take at the provider.
const oidcStateTTL = 10 * time.Minute

// maxRedirectBytes bounds an app's redirect URL.
const maxRedirectBytes = 2048

const oidcStatePurpose = "oidc_state"

// oidcProviders are the configured providers, discovered on first use.
type oidcProviders struct {
	byName map[string]*oidcProvider
	names  []string
	client *http.Client
}

type oidcProvider struct {
	cfg Provider

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovered
	failedAt time.Time      // the last failed discovery
	err      error
}

func newOIDC(cfg Config) *oidcProviders {
	o := &oidcProviders{byName: make(map[string]*oidcProvider), client: &http.Client{Timeout: 10 * time.Second}}
	for _, p := range cfg.Providers {
		p.Scopes = slices.Clone(p.Scopes)
		if len(p.Scopes) == 0 {
			p.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
		}
		if !slices.Contains(p.Scopes, oidc.ScopeOpenID) {
			p.Scopes = append([]string{oidc.ScopeOpenID}, p.Scopes...)
		}
		o.byName[p.Name] = &oidcProvider{cfg: p}
		o.names = append(o.names, p.Name)
	}
	return o
}

// startOIDC validates the providers' config and checks that the store
// keeps identity links. Discovery waits for the first sign-in: a provider
// that is down must not stop the platform.
func (s *Service) startOIDC() error {
	if err := ValidateProviders(s.cfg.Providers, s.cfg.AllowedRedirects); err != nil {
		return fmt.Errorf("auth providers: %w", err)
	}
	if len(s.cfg.Providers) > 0 {
		if _, ok := s.cfg.Store.(store.Identities); !ok {
			return errors.New("auth providers: the store keeps no identity links (store.Identities)")
		}
	}
	return nil
}

// discover fetches the provider's configuration once; a failure is
// retried after 10 seconds.
func (o *oidcProviders) discover(p *oidcProvider, now time.Time) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	if !p.failedAt.IsZero() && now.Sub(p.failedAt) < 10*time.Second {
		return nil, p.err
	}
	// The provider keeps this context for its key set's later fetches: it
	// must outlive the request; the client's timeout bounds each fetch.
	op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), o.client), p.cfg.Issuer)
	if err != nil {
		p.failedAt, p.err = now, err
		return nil, err
	}
	p.provider = op
	return op, nil
}

func (o *oidcProviders) oauth(p *oidcProvider, op *oidc.Provider, callback string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: string(p.cfg.ClientSecret),
		Endpoint: op.Endpoint(), RedirectURL: callback, Scopes: p.cfg.Scopes}
}

// oidcState is what the sealed state carries.
type oidcState struct {
	ID       string `json:"i"` // its SHA-256 is the one-time token
	Provider string `json:"p"`
	Verifier string `json:"v"` // PKCE
	Nonce    string `json:"n"`
	App      string `json:"a"` // the app's redirect URL
	Callback string `json:"c"` // the redirect URL given to the provider
	Expires  int64  `json:"e"` // Unix seconds
}

func stateAD(provider string) []byte { return []byte("hostless oidc state " + provider) }

func (s *Service) provider(name string) (*oidcProvider, error) {
	if p, ok := s.oidc.byName[name]; ok {
		return p, nil
	}
	return nil, apierror.NotFound("oidc_provider_not_found", "no identity provider named %q; GET /v1/auth/providers lists them", name)
}

// allowedRedirect checks an app's redirect URL against the allowed
// prefixes: the same scheme and host, and a path under the prefix's,
// without dot segments or a fragment (the tokens go in the fragment).
// Anything else would let a crafted link send the tokens elsewhere.
func (s *Service) allowedRedirect(raw string) error {
	refuse := apierror.New(http.StatusBadRequest, "redirect_uri_not_allowed",
		"redirect_uri: give the URL of the app to return to, one the platform allows (auth config allowed_redirects)")
	if raw == "" || len(raw) > maxRedirectBytes || strings.ContainsAny(raw, "\\\r\n\t ") {
		return refuse
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") || u.Opaque != "" || u.Host == "" {
		return refuse
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." { // a browser resolves them, out from under the prefix
			return refuse
		}
	}
	for _, a := range s.cfg.AllowedRedirects {
		pre, err := url.Parse(a)
		if err != nil || !strings.EqualFold(pre.Scheme, u.Scheme) || !strings.EqualFold(pre.Host, u.Host) {
			continue
		}
		pp, up := pre.EscapedPath(), u.EscapedPath()
		if pp == "" || pp == "/" || up == pp || (strings.HasPrefix(up, pp) && (strings.HasSuffix(pp, "/") || up[len(pp)] == '/')) {
			return nil
		}
	}
	return refuse
}

// callbackURL is where the provider sends the browser back: under
// PublicURL, or, without one, the host the request came to.
func (s *Service) callbackURL(r *http.Request, name string) string {
	base := strings.TrimSuffix(s.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/v1/auth/oidc/" + name + "/callback"
}

func (s *Service) handleProviders(w http.ResponseWriter, r *http.Request) error {
	type provider struct {
		Name     string `json:"name"`
		StartURL string `json:"start_url"`
	}
	out := make([]provider, 0, len(s.oidc.names))
	for _, n := range s.oidc.names {
		out = append(out, provider{Name: n, StartURL: "/v1/auth/oidc/" + n + "/start"})
	}
	return reply(w, http.StatusOK, map[string]any{"providers": out})
}

func redirect(w http.ResponseWriter, to string) error {
	w.Header().Set("Location", to)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
	return nil
}

// handleOIDCStart sends the browser to the provider.
func (s *Service) handleOIDCStart(w http.ResponseWriter, r *http.Request) error {
	p, err := s.provider(r.PathValue("provider"))
	if err != nil {
		return err
	}
	app := r.URL.Query().Get("redirect_uri")
	if err := s.allowedRedirect(app); err != nil {
		return err
	}
	now := s.now()
	op, err := s.oidc.discover(p, now)
	if err != nil {
		s.cfg.Log.WarnContext(r.Context(), "oidc discovery failed", "provider", p.cfg.Name, "err", err)
		return apierror.New(http.StatusBadGateway, "oidc_provider_unavailable", "the identity provider %q does not answer; try again later", p.cfg.Name)
	}
	id, hash, err := randomToken(24)
	if err != nil {
		return err
	}
	nonce, _, err := randomToken(24)
	if err != nil {
		return err
	}
	st := oidcState{ID: id, Provider: p.cfg.Name, Verifier: oauth2.GenerateVerifier(), Nonce: nonce,
		App: app, Callback: s.callbackURL(r, p.cfg.Name), Expires: now.Add(oidcStateTTL).Unix()}
	plain, err := json.Marshal(st)
	if err != nil {
		return err
	}
	sealed, err := s.cfg.Sealer.Seal(plain, stateAD(p.cfg.Name))
	if err != nil {
		return fmt.Errorf("seal oidc state: %w", err)
	}
	if err := s.cfg.Store.PutOneTimeToken(r.Context(), store.OneTimeToken{Project: s.cfg.Project, Hash: hash,
		Purpose: oidcStatePurpose, ExpiresAt: now.Add(oidcStateTTL)}); err != nil {
		return err
	}
	to := s.oidc.oauth(p, op, st.Callback).AuthCodeURL(base64.RawURLEncoding.EncodeToString(sealed),
		oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce))
	return redirect(w, to)
}

var errState = apierror.New(http.StatusBadRequest, "oidc_state_invalid",
	"the sign-in's state is missing, altered or for another provider; start the sign-in again")

// openState opens and spends a callback's state.
func (s *Service) openState(ctx context.Context, p *oidcProvider, raw string, now time.Time) (oidcState, error) {
	var st oidcState
	if raw == "" || len(raw) > 4*maxRedirectBytes {
		return st, errState
	}
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return st, errState
	}
	plain, err := s.cfg.Sealer.Open(sealed, stateAD(p.cfg.Name))
	if err != nil {
		return st, errState
	}
	if err := json.Unmarshal(plain, &st); err != nil || st.Provider != p.cfg.Name {
		return st, errState
	}
	expired := apierror.New(http.StatusBadRequest, "oidc_state_expired", "the sign-in took over %d minutes; start it again", int(oidcStateTTL/time.Minute))
	if now.Unix() >= st.Expires {
		return st, expired
	}
	_, err = s.cfg.Store.UseOneTimeToken(ctx, s.cfg.Project, sha256.Sum256([]byte(st.ID)), oidcStatePurpose, now)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		return st, apierror.New(http.StatusBadRequest, "oidc_state_used", "this sign-in's state was used already; start the sign-in again")
	case errors.Is(err, store.ErrTokenExpired):
		return st, expired
	case errors.Is(err, store.ErrNotFound):
		return st, errState
	case err != nil:
		return st, err
	}
	return st, nil
}

// fragment returns u with v as its fragment.
func fragment(u string, v url.Values) string { return u + "#" + v.Encode() }

// handleOIDCCallback finishes a sign-in: the provider sent the browser
// back with a code (or an error).
func (s *Service) handleOIDCCallback(w http.ResponseWriter, r *http.Request) error {
	p, err := s.provider(r.PathValue("provider"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	now := s.now()
	st, err := s.openState(r.Context(), p, q.Get("state"), now)
	if err != nil {
		return err
	}
	if e := q.Get("error"); e != "" {
		v := url.Values{"error": {truncate(e, 64)}}
		if d := q.Get("error_description"); d != "" {
			v.Set("error_description", truncate(d, 256))
		}
		s.cfg.Log.InfoContext(r.Context(), "oidc sign-in refused by the provider", "provider", p.cfg.Name, "error", truncate(e, 64))
		return redirect(w, fragment(st.App, v))
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return apierror.BadRequest("code: the provider sent no authorization code")
	}
	op, err := s.oidc.discover(p, now)
	if err != nil {
		s.cfg.Log.WarnContext(r.Context(), "oidc discovery failed", "provider", p.cfg.Name, "err", err)
		return apierror.New(http.StatusBadGateway, "oidc_provider_unavailable", "the identity provider %q does not answer; try again later", p.cfg.Name)
	}
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, s.oidc.client)
	tok, err := s.oidc.oauth(p, op, st.Callback).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The body is the provider's; log its error code only.
			s.cfg.Log.InfoContext(r.Context(), "oidc code exchange refused", "provider", p.cfg.Name, "error", truncate(re.ErrorCode, 64))
			return apierror.New(http.StatusBadRequest, "oidc_exchange_failed", "the identity provider refused the authorization code; start the sign-in again")
		}
		s.cfg.Log.WarnContext(r.Context(), "oidc code exchange failed", "provider", p.cfg.Name, "status", retrieveStatus(err))
		return apierror.New(http.StatusBadGateway, "oidc_provider_unavailable", "the identity provider %q did not exchange the code; try again later", p.cfg.Name)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return apierror.New(http.StatusBadGateway, "oidc_no_id_token", "the identity provider %q returned no ID token; is it an OpenID Connect provider?", p.cfg.Name)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: s.cfg.Now}).Verify(oidc.ClientContext(r.Context(), s.oidc.client), raw)
	if err != nil {
		s.cfg.Log.InfoContext(r.Context(), "oidc ID token refused", "provider", p.cfg.Name, "err", err)
		return apierror.New(http.StatusUnauthorized, "oidc_id_token_invalid", "the identity provider's ID token is not valid: %s", strings.TrimPrefix(err.Error(), "oidc: "))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return apierror.New(http.StatusUnauthorized, "oidc_id_token_invalid", "the identity provider's ID token is not valid: its nonce is not this sign-in's")
	}
	var claims struct {
		Email    string       `json:"email"`
		Verified flexibleBool `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return apierror.New(http.StatusUnauthorized, "oidc_id_token_invalid", "the identity provider's ID token has malformed claims")
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return apierror.New(http.StatusUnauthorized, "oidc_id_token_invalid", "the identity provider's ID token has no subject")
	}
	if claims.Email == "" {
		return apierror.New(http.StatusForbidden, "oidc_email_missing", "the identity provider %q gave no email address: the platform needs one (scope email)", p.cfg.Name)
	}
	email, err := normalizeEmail(claims.Email)
	if err != nil {
		return apierror.New(http.StatusForbidden, "oidc_email_invalid", "the identity provider %q gave an email the platform can't use", p.cfg.Name)
	}
	if !claims.Verified {
		return apierror.New(http.StatusForbidden, "oidc_email_unverified", "the identity provider %q has not verified %s: verify it there, then sign in again", p.cfg.Name, email)
	}
	u, err := s.identityUser(r.Context(), p.cfg.Name, idt.Subject, email, now)
	if err != nil {
		return err
	}
	if u.Disabled {
		return apierror.New(http.StatusForbidden, "account_disabled", "this account is disabled")
	}
	// A microsecond after any refusal identityUser made of u's older
	// tokens, which refuses those issued until then, inclusive.
	t, err := s.login(r.Context(), u, now.Add(time.Microsecond))
	if err != nil {
		return err
	}
	return redirect(w, fragment(st.App, url.Values{"access_token": {t.AccessToken}, "refresh_token": {t.RefreshToken},
		"expires_in": {strconv.Itoa(t.ExpiresIn)}, "token_type": {t.TokenType}}))
}

// identityUser returns the user linked to a provider's subject; else
// links the user with that (provider-verified) email; else creates one.
func (s *Service) identityUser(ctx context.Context, provider, subject, email string, now time.Time) (store.User, error) {
	ids := s.cfg.Store.(store.Identities) // checked by startOIDC
	link, err := ids.GetIdentity(ctx, s.cfg.Project, provider, subject)
	if err == nil {
		return s.cfg.Store.GetUser(ctx, s.cfg.Project, link.UserID)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	u, err := s.cfg.Store.GetUserByEmail(ctx, s.cfg.Project, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u, err = s.createUser(ctx, email, "", nil, true, now)
		var ae *apierror.Error
		if errors.As(err, &ae) && ae.Code == "email_taken" { // a concurrent sign-in made it
			u, err = s.cfg.Store.GetUserByEmail(ctx, s.cfg.Project, email)
		}
		if err != nil {
			return store.User{}, err
		}
	case err != nil:
		return store.User{}, err
	case u.Disabled:
		return u, nil // refused by the caller, and not linked
	case !u.EmailVerified:
		// Whoever signed up with this address never proved they own it;
		// the provider just proved the caller does. The account's password
		// may be an attacker's, set to wait for the owner: it goes, and so
		// do the sessions it opened. The owner can set a new one by reset.
		u, err = s.cfg.Store.UpdateUser(ctx, s.cfg.Project, u.ID, func(u *store.User) error {
			u.EmailVerified, u.PasswordHash, u.UpdatedAt = true, "", now
			return nil
		})
		if err != nil {
			return store.User{}, err
		}
		if err := s.cfg.Store.RevokeUserTokens(ctx, s.cfg.Project, u.ID); err != nil {
			return store.User{}, err
		}
		s.mu.Lock()
		s.revoked[u.ID] = now
		s.mu.Unlock()
		s.tokens.drop(User, u.ID)
		s.cfg.Log.InfoContext(ctx, "an unverified account was claimed through an identity provider: its password and sessions are revoked",
			"user", u.ID, "provider", provider)
	}
	err = ids.LinkIdentity(ctx, store.Identity{Project: s.cfg.Project, Provider: provider, Subject: subject,
		UserID: u.ID, Email: email, CreatedAt: now})
	if errors.Is(err, store.ErrConflict) { // a concurrent sign-in linked it
		link, err := ids.GetIdentity(ctx, s.cfg.Project, provider, subject)
		if err != nil {
			return store.User{}, err
		}
		return s.cfg.Store.GetUser(ctx, s.cfg.Project, link.UserID)
	}
	if err != nil {
		return store.User{}, err
	}
	s.emit("auth.identity.linked", map[string]any{"id": u.ID, "email": u.Email, "provider": provider})
	return u, nil
}

// flexibleBool reads a JSON boolean, or the strings "true" and "false"
// that some providers send for email_verified.
type flexibleBool bool

func (b *flexibleBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("email_verified: %s is not a boolean", data)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func retrieveStatus(err error) int {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}
