package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadProviders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `providers:
  - name: corp-sso
    issuer: https://sso.example.com
    client_id: hostless
    client_secret: from-file
allowed_redirects: [https://app.example.com/]
`)
	env := map[string]string{"HOSTLESS_AUTH_PROVIDER_CORP_SSO_CLIENT_SECRET": "from-env"}
	ps, redirects, err := loadProviders(good, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Name != "corp-sso" || string(ps[0].ClientSecret) != "from-env" || len(redirects) != 1 {
		t.Fatalf("loaded %+v %v", ps, redirects)
	}
	if ps, _, err := loadProviders("", nil); err != nil || ps != nil {
		t.Fatalf("no file: %v %v", ps, err)
	}
	for name, body := range map[string]string{
		"unknown field": "providers: []\nredirects: []\n",
		"no redirects":  "providers: [{name: a, issuer: https://a.example.com, client_id: x}]\n",
		"bad issuer":    "providers: [{name: a, issuer: ftp://a, client_id: x}]\nallowed_redirects: [https://app.example.com/]\n",
	} {
		_, _, err := loadProviders(write(strings.ReplaceAll(name, " ", "_")+".yaml", body), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "auth-providers") {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}
