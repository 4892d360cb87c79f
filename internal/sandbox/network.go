package sandbox

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Outbound network: each slot of a function with network: outbound gets a
// veth pair, eth0 inside with a /30 of 10.128.0.0/9 and a default route to
// the host's end, and the host masquerades its traffic. An nftables table
// of the manager's own refuses, for packets from its veths:
//   - anything addressed to the host itself (input hook): the platform,
//     and the brokers and databases listening on all interfaces;
//   - forwarded packets to loopback, private, shared, link-local
//     (169.254.0.0/16: cloud metadata), multicast and reserved ranges, and
//     to the host's own addresses, except DNS to the host's nameservers.
// Deleting a slot's network namespace deletes its veth with it.

// blockedRanges are never reachable from a sandbox.
var blockedRanges = []string{
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
}

const (
	slotNet  = "10.128.0.0/9"
	slotBits = 9
)

// managers numbers the managers of this process.
var managers atomic.Uint32

type outbound struct {
	seq    uint32 // the manager's number in this process
	prefix string // interface name prefix of this manager's veths
	table  *nftables.Table
}

// setupOutbound turns forwarding on and installs the manager's table.
func (m *Manager) setupOutbound() (*outbound, error) {
	m.netOnce.Do(func() {
		// Unique per manager (several may live in one process): "hl", the
		// pid, the manager's number; slot ids follow. At most 15 bytes.
		seq := managers.Add(1)
		o := &outbound{seq: seq, prefix: fmt.Sprintf("hl%x%x-", os.Getpid()&0xffff, seq&0xff)}
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
			m.netErr = fmt.Errorf("sandbox: enable IPv4 forwarding: %w", err)
			return
		}
		if err := o.install(); err != nil {
			m.netErr = fmt.Errorf("sandbox: install the outbound rules (nftables): %w", err)
			return
		}
		m.net = o
	})
	return m.net, m.netErr
}

func (o *outbound) install() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	// The table's name is unique per server process and manager (the veth
	// prefix may repeat across processes: rules for it are the same).
	o.table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: fmt.Sprintf("hostless_%d_%d", os.Getpid(), o.seq)})
	c.FlushTable(o.table)
	// Tables of servers that died without closing (kill -9) go too.
	if tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4); err == nil {
		for _, t := range tables {
			var pid, seq int
			if n, _ := fmt.Sscanf(t.Name, "hostless_%d_%d", &pid, &seq); n == 2 && pid != os.Getpid() {
				if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
					c.DelTable(t)
				}
			}
		}
	}
	// Policies accept: the table only drops what comes from its sandboxes.
	accept := nftables.ChainPolicyAccept
	input := c.AddChain(&nftables.Chain{Name: "input", Table: o.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	forward := c.AddChain(&nftables.Chain{Name: "forward", Table: o.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: o.table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	fromSandbox := ifnamePrefix(expr.MetaKeyIIFNAME, o.prefix)

	// Nothing from a sandbox reaches the host itself.
	c.AddRule(&nftables.Rule{Table: o.table, Chain: input, Exprs: append(fromSandbox, refuse()...)})
	// DNS to the host's nameservers, wherever they are (on the host itself
	// too: ahead of the input chain's refusal).
	for _, ns := range nameservers() {
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			e := append([]expr.Any{}, fromSandbox...)
			e = append(e, daddrIn(&net.IPNet{IP: ns, Mask: net.CIDRMask(32, 32)})...)
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 53}},
				&expr.Verdict{Kind: expr.VerdictAccept})
			c.AddRule(&nftables.Rule{Table: o.table, Chain: forward, Exprs: e})
			c.InsertRule(&nftables.Rule{Table: o.table, Chain: input, Exprs: e})
		}
	}
	blocked := append([]string(nil), blockedRanges...)
	for _, ip := range hostAddrs() {
		blocked = append(blocked, ip.String()+"/32")
	}
	for _, cidr := range blocked {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return err
		}
		e := append(append([]expr.Any{}, fromSandbox...), daddrIn(n)...)
		c.AddRule(&nftables.Rule{Table: o.table, Chain: forward, Exprs: append(e, refuse()...)})
	}
	// What leaves for elsewhere leaves as the host.
	_, sn, _ := net.ParseCIDR(slotNet)
	e := append(saddrIn(sn), ifnameNotPrefix(expr.MetaKeyOIFNAME, "hl")...)
	c.AddRule(&nftables.Rule{Table: o.table, Chain: post, Exprs: append(e, &expr.Masq{})})
	return c.Flush()
}

// remove deletes the manager's table.
func (o *outbound) remove() {
	c, err := nftables.New()
	if err != nil {
		return
	}
	c.DelTable(o.table)
	_ = c.Flush()
}

// refuse rejects a packet with ICMP "administratively prohibited" (then
// drops it, for what can't be rejected), so that a function's connection
// fails at once instead of hanging until its timeout.
func refuse() []expr.Any {
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 13}}
}

func ifnamePrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

func ifnameNotPrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(prefix)},
	}
}

// addrIn matches the IPv4 address at offset (12 source, 16 destination) in n.
func addrIn(offset uint32, n *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(n.Mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(n.IP.To4())},
	}
}

func daddrIn(n *net.IPNet) []expr.Any { return addrIn(16, n) }
func saddrIn(n *net.IPNet) []expr.Any { return addrIn(12, n) }

// nameservers are the IPv4 nameservers sandboxes use (resolvConf's).
func nameservers() []net.IP {
	var out []net.IP
	for _, ip := range parseNameservers(resolvConf()) {
		if ip.To4() != nil && !ip.IsLoopback() {
			out = append(out, ip.To4())
		}
	}
	return out
}

// resolvConf is the resolv.conf a sandbox gets: the host's, unless its
// nameservers are all on loopback (systemd-resolved's 127.0.0.53, which a
// sandbox can't reach), then the upstream servers resolved names.
func resolvConf() []byte {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	for _, ip := range parseNameservers(b) {
		if !ip.IsLoopback() {
			return b
		}
	}
	if up, err := os.ReadFile("/run/systemd/resolve/resolv.conf"); err == nil {
		return up
	}
	return b
}

func parseNameservers(b []byte) []net.IP {
	var out []net.IP
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if ip := net.ParseIP(fields[1]); ip != nil {
				out = append(out, ip)
			}
		}
	}
	return out
}

// hostAddrs are the host's own IPv4 addresses.
func hostAddrs() []net.IP {
	addrs, _ := net.InterfaceAddrs()
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip := n.IP.To4(); ip != nil {
				out = append(out, ip)
			}
		}
	}
	return out
}

// wire gives the slot's network namespace (ns) an eth0 with a default
// route through a veth to the host. It runs in the host's namespace.
func (o *outbound) wire(name string, ns *os.File) error {
	hostAddr, inAddr, err := freeSubnet()
	if err != nil {
		return err
	}
	if len(name) > 15 {
		return fmt.Errorf("sandbox: interface name %s too long", name)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns.Fd()))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("sandbox: make veth: %w", err)
	}
	host, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: hostAddr}); err != nil {
		return fmt.Errorf("sandbox: address the veth: %w", err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(int(ns.Fd())))
	if err != nil {
		return err
	}
	defer h.Close()
	in, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := h.AddrAdd(in, &netlink.Addr{IPNet: inAddr}); err != nil {
		return err
	}
	if err := h.LinkSetUp(in); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: hostAddr.IP})
}

// freeSubnet picks a /30 of 10.128.0.0/9 that no interface of the host
// uses: the host's end (.1) and the sandbox's (.2).
func freeSubnet() (host, in *net.IPNet, err error) {
	used := map[string]bool{}
	for _, ip := range hostAddrs() {
		used[ip.Mask(net.CIDRMask(30, 32)).String()] = true
	}
	var b [4]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, nil, err
		}
		v := binary.BigEndian.Uint32(b[:])
		v = 10<<24 | 1<<23 | (v & (1<<(32-slotBits) - 1) &^ 3) // 10.128.0.0/9, a /30
		base := make(net.IP, 4)
		binary.BigEndian.PutUint32(base, v)
		if used[base.String()] {
			continue
		}
		mask := net.CIDRMask(30, 32)
		h := make(net.IP, 4)
		binary.BigEndian.PutUint32(h, v+1)
		s := make(net.IP, 4)
		binary.BigEndian.PutUint32(s, v+2)
		return &net.IPNet{IP: h, Mask: mask}, &net.IPNet{IP: s, Mask: mask}, nil
	}
	return nil, nil, errors.New("sandbox: no free subnet for a veth")
}

// allow lets the slot's veth reach ranges (CIDRs) the rules refuse: rules
// ahead of the refusals, marked with the veth's name so that disallow
// finds them.
func (o *outbound) allow(veth string, ranges []string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	exact := append([]byte(veth), 0) // a name, not a prefix
	for _, chain := range []string{"forward", "input"} {
		ch := &nftables.Chain{Name: chain, Table: o.table}
		for _, cidr := range ranges {
			_, n, err := net.ParseCIDR(cidr)
			if err != nil || n.IP.To4() == nil {
				return fmt.Errorf("sandbox: %q is not an IPv4 range", cidr)
			}
			e := []expr.Any{
				&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: exact},
			}
			e = append(e, daddrIn(n)...)
			c.InsertRule(&nftables.Rule{Table: o.table, Chain: ch, UserData: []byte(veth),
				Exprs: append(e, &expr.Verdict{Kind: expr.VerdictAccept})})
		}
	}
	return c.Flush()
}

// disallow deletes the rules allow made for veth.
func (o *outbound) disallow(veth string) {
	c, err := nftables.New()
	if err != nil {
		return
	}
	for _, chain := range []string{"forward", "input"} {
		rules, err := c.GetRules(o.table, &nftables.Chain{Name: chain, Table: o.table})
		if err != nil {
			continue
		}
		for _, r := range rules {
			if string(r.UserData) == veth {
				_ = c.DelRule(r)
			}
		}
	}
	_ = c.Flush()
}
