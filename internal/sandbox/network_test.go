package sandbox

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// fakeInternet makes a network namespace that stands for a host on the
// internet (198.51.100.10, TEST-NET-2: no private range), reached from this
// host through a veth, with an HTTP server on it. The machine has no real
// internet.
func fakeInternet(t *testing.T) string {
	t.Helper()
	nsc := make(chan *os.File, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked if it can't go back: the thread dies
		host, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer host.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ns, err := os.Open("/proc/thread-self/ns/net")
		if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		nsc <- ns
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ns := <-nsc
	t.Cleanup(func() { ns.Close() })
	name := fmt.Sprintf("fakenet%x", os.Getpid()&0xffff)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns.Fd()))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	hostEnd, _ := netlink.LinkByName(name)
	must(t, netlink.AddrAdd(hostEnd, &netlink.Addr{IPNet: ipnet("198.51.100.1/24")}))
	must(t, netlink.LinkSetUp(hostEnd))
	h, err := netlink.NewHandleAt(netns.NsHandle(int(ns.Fd())))
	must(t, err)
	defer h.Close()
	in, err := h.LinkByName("eth0")
	must(t, err)
	must(t, h.AddrAdd(in, &netlink.Addr{IPNet: ipnet("198.51.100.10/24")}))
	must(t, h.LinkSetUp(in))
	must(t, h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: net.ParseIP("198.51.100.1")}))
	// Listen inside it.
	lnc := make(chan net.Listener, 1)
	go func() {
		runtime.LockOSThread()
		host, _ := os.Open("/proc/thread-self/ns/net")
		defer host.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp", "198.51.100.10:8080")
		if unix.Setns(int(host.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		lnc <- ln
		errc <- err
	}()
	must(t, <-errc)
	ln := <-lnc
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "internet says hi to "+strings.Split(r.RemoteAddr, ":")[0])
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "198.51.100.10:8080"
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ipnet(s string) *net.IPNet {
	ip, n, _ := net.ParseCIDR(s)
	n.IP = ip
	return n
}

func TestOutboundNetwork(t *testing.T) {
	if err := Check(); err != nil {
		t.Skip("needs a host that can sandbox (CI runs as root): ", err)
	}
	internet := fakeInternet(t)
	m := newManager(t, Config{})
	// curl reaches the internet host (masqueraded as this host), and
	// nothing of the host's own or of private ranges.
	ip := hostIPv4(t)
	// A service listening on all interfaces, as brokers often do: on the
	// host's own address.
	svc, err := net.Listen("tcp", ip+":0")
	must(t, err)
	defer svc.Close()
	go http.Serve(svc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "broker") }))
	svcAddr := svc.Addr().String()
	script := `
[ -s /proc/net/if_inet6 ] && echo "ipv6=on" || echo "ipv6=off"
curl -sS -m 2 http://` + internet + `/ ; echo
for target in 127.0.0.1:5432 ` + svcAddr + ` ` + ip + `:5432 198.51.100.1:80 169.254.169.254:80 10.255.255.53:80 192.168.1.1:80; do
  curl -s -m 1 -o /dev/null "http://$target/" && echo "reached $target" || echo "blocked $target"
done
`
	out, errOut, exit := runNet(t, m, NetworkOutbound, codeDir(t), script, 64)
	if exit.Code != 0 {
		t.Fatalf("exit %v: %s", exit, errOut)
	}
	if !strings.Contains(out, "internet says hi to 198.51.100.1") {
		t.Fatalf("the internet host was not reached (as this host's address):\n%s\n%s", out, errOut)
	}
	if strings.Contains(out, "reached") {
		t.Fatalf("a sandbox reached the host or a private range:\n%s", out)
	}
	// The rules are IPv4 rules: a sandbox has no IPv6 address to go around them.
	if !strings.Contains(out, "ipv6=off") {
		t.Fatalf("IPv6 is on in an outbound sandbox:\n%s", out)
	}
	// A range the function is allowed: that service, on the host's own address.
	probe := "(exec 3<>/dev/tcp/" + strings.Replace(svcAddr, ":", "/", 1) + ") 2>/dev/null && echo reached || echo blocked"
	out, _, _ = runNet(t, m, NetworkOutbound, codeDir(t), "bash -c '"+probe+"'", 64, ip+"/32")
	if !strings.Contains(out, "reached") {
		t.Fatalf("an allowed range was refused: %s", out)
	}
	// The allowance ended with its slot: the next one is refused again.
	out, _, _ = runNet(t, m, NetworkOutbound, codeDir(t), "bash -c '"+probe+"'", 64)
	if !strings.Contains(out, "blocked") {
		t.Fatalf("an allowance outlived its instance: %s", out)
	}
	// With network none, not even the internet host.
	out, _, _ = runNet(t, m, NetworkNone, codeDir(t), "curl -sS -m 1 http://"+internet+"/ && echo reached || echo blocked", 64)
	if !strings.Contains(out, "blocked") {
		t.Fatalf("network none reached the internet: %s", out)
	}
}

func hostIPv4(t *testing.T) string {
	for _, ip := range hostAddrs() {
		if !ip.IsLoopback() && !strings.HasPrefix(ip.String(), "198.51.100.") {
			return ip.String()
		}
	}
	t.Skip("no non-loopback IPv4 address")
	return ""
}

func TestResolvConfNameservers(t *testing.T) {
	got := parseNameservers([]byte("# comment\nnameserver 10.0.0.2\nsearch x\nnameserver 127.0.0.53\nnameserver ::1\nnameserver bogus\n"))
	if len(got) != 3 || got[0].String() != "10.0.0.2" || !got[1].IsLoopback() || !got[2].IsLoopback() {
		t.Fatalf("parseNameservers: %v", got)
	}
}
