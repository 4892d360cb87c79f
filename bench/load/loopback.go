package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// errNotLoopback is returned for a target outside this machine. The
// benchmark machines allow no traffic anywhere but loopback, so the generator
// refuses such targets before sending anything, and checks again at dial time.
var errNotLoopback = errors.New("not a loopback host: only 127.0.0.0/8, ::1 and localhost are allowed")

// checkTarget parses raw and accepts it only when it is an http or https URL
// whose host is a loopback address or "localhost".
func checkTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("target %q: no host", raw)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("target %q: host %q: %w", raw, host, errNotLoopback)
	}
	return u, nil
}

// isLoopbackHost reports whether host is "localhost" or a literal loopback IP
// address (127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackDialer dials only loopback addresses: it resolves the host itself
// (a name such as localhost could resolve anywhere) and refuses the dial
// unless every address it gets is a loopback one. With no proxy and no
// redirects followed, this is the last gate before a packet leaves.
type loopbackDialer struct {
	dialer   net.Dialer
	resolver *net.Resolver
	// dials counts the connections opened: with keep-alive working, one per
	// client.
	dials func()
}

func (d *loopbackDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	ips, err := d.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("dial %s: no address", addr)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return nil, fmt.Errorf("dial %s: %s: %w", addr, ip.IP, errNotLoopback)
		}
	}
	var firstErr error
	for _, ip := range ips {
		c, err := d.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			if d.dials != nil {
				d.dials()
			}
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}
