package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

// hostIP is an address of this host other than loopback, where services
// listen on all interfaces (RabbitMQ here).
func hostIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this host")
	return ""
}

// call invokes an action of the lambdafn function through /fn and returns
// its JSON result as a string.
func (a *testApp) action(fn, action, arg string) (int, string) {
	a.t.Helper()
	resp, body := a.do("GET", "/fn/"+fn+"/"+action+"?arg="+url.QueryEscape(arg), nil, nil)
	var s string
	if json.Unmarshal(body, &s) == nil {
		return resp.StatusCode, s
	}
	return resp.StatusCode, string(body)
}

// TestHostileFunction is a function that attacks: the files, processes,
// environment and endpoints of another function and of the host. Every
// attempt fails for it, and the platform keeps serving the other function.
func TestHostileFunction(t *testing.T) {
	needSandbox(t)
	cfg := newConfig(t)
	a := startApp(t, cfg)
	code := zipCode(t, wasmtest.LambdaFn(t))
	spec := func(env map[string]string) function.Spec {
		return function.Spec{Runtime: function.RuntimeProcess, Timeout: function.Duration(10 * time.Second), MemoryMB: 64,
			Network: function.NetworkNone, Env: env}
	}
	a.deploy("victim", code, spec(map[string]string{"VICTIM_SECRET": "v1ct1m-s3cret"}))
	// The attacker has the default network, outbound: it can reach the
	// internet, and must still not reach the host.
	att := spec(nil)
	att.Network = function.NetworkOutbound
	a.deploy("attacker", code, att)

	// The victim leaves a file in its /tmp and is running (warm) meanwhile.
	if st, out := a.action("victim", "write", "/tmp/victim-file"); st != 200 || out != "wrote" {
		t.Fatalf("victim write: %d %s", st, out)
	}
	codeDirs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "process", "code", "*", "bootstrap"))
	if len(codeDirs) == 0 {
		t.Fatal("no unpacked code under the data directory")
	}
	ip := hostIP(t)
	// A service on all of the host's interfaces, as brokers often listen.
	svc, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go http.Serve(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	attempts := []struct{ what, action, arg string }{
		{"another instance's /tmp", "read", "/tmp/victim-file"},
		{"the code of a function, by its host path", "read", codeDirs[0]},
		{"the host's /etc/shadow", "read", "/etc/shadow"},
		{"the platform's database", "read", filepath.Join(cfg.DataDir, "meta.db")},
		{"the host's root home", "read", "/root/.bashrc"},
		{"its own code, to change it", "write", "/var/task/bootstrap"},
		{"PostgreSQL on the host's loopback", "dial", "127.0.0.1:5432"},
		{"a service on the host's own address", "dial", svc.Addr().String()},
		{"the platform's HTTP port", "dial", strings.TrimPrefix(a.base, "http://")},
		{"the cloud metadata address", "dial", "169.254.169.254:80"},
		{"signal init (PID 1)", "kill", ""},
	}
	for _, at := range attempts {
		st, out := a.action("attacker", at.action, at.arg)
		if st != 200 || !strings.HasPrefix(out, "denied") {
			t.Errorf("%s: the attacker got %d %q", at.what, st, out)
		}
	}
	// Other processes and their environments are out of sight.
	if st, out := a.action("attacker", "procs", ""); st != 200 || out != "1" {
		t.Errorf("the attacker sees %s processes (want 1: itself; init is hidden)", out)
	}
	// (HOSTLESS_API_URL is the attacker's own: where its API endpoint is.)
	if _, out := a.action("attacker", "environs", ""); strings.Contains(out, "v1ct1m") || strings.Contains(strings.ReplaceAll(out, "HOSTLESS_API_URL=", ""), "HOSTLESS") {
		t.Errorf("the attacker read another environment: %q", out)
	}

	// A fork bomb hits the pids limit while the victim keeps serving.
	var wg sync.WaitGroup
	wg.Add(1)
	var bomb string
	var bombStatus int
	go func() {
		defer wg.Done()
		bombStatus, bomb = a.action("attacker", "forkbomb", "")
	}()
	for i := 0; i < 5; i++ {
		if st, out := a.action("victim", "read", "/tmp/victim-file"); st != 200 || out != "read 1 bytes" {
			t.Fatalf("victim during the fork bomb: %d %s", st, out)
		}
	}
	wg.Wait()
	// Either the bomb saw its forks fail, or the limit (which counts
	// threads too) took the bomber's own runtime down: both contain it.
	var counts map[string]int
	contained := bombStatus == http.StatusBadGateway ||
		json.Unmarshal([]byte(bomb), &counts) == nil && counts["failed"] > 0 && counts["started"] < 256
	if !contained {
		t.Fatalf("fork bomb was not contained: %d %s", bombStatus, bomb)
	}
	// Past its memory and its timeout, the attacker is killed; the victim serves on.
	if st, _ := a.action("attacker", "alloc", ""); st != http.StatusBadGateway {
		t.Errorf("alloc past the limit: %d", st)
	}
	if st, out := a.action("victim", "read", "/tmp/victim-file"); st != 200 || out != "read 1 bytes" {
		t.Fatalf("victim after the attacks: %d %s", st, out)
	}
	fmt.Fprintln(testOut{t}, "fork bomb:", bomb)
}

type testOut struct{ t *testing.T }

func (o testOut) Write(b []byte) (int, error) {
	o.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestAttacksSucceedWithoutIsolation is the control: the same attacks
// under isolation none reach the host, so the test above can fail.
func TestAttacksSucceedWithoutIsolation(t *testing.T) {
	cfg := newConfig(t)
	cfg.Isolation = "none"
	a := startApp(t, cfg)
	a.deploy("attacker", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(10 * time.Second), MemoryMB: 64, Network: function.NetworkNone})
	if st, out := a.action("attacker", "dial", strings.TrimPrefix(a.base, "http://")); st != 200 || out != "connected" {
		t.Fatalf("without isolation the platform's port should be reachable: %d %s", st, out)
	}
	if st, out := a.action("attacker", "read", filepath.Join(cfg.DataDir, "meta.db")); st != 200 || !strings.HasPrefix(out, "read ") {
		t.Fatalf("without isolation the data directory should be readable: %d %s", st, out)
	}
}
