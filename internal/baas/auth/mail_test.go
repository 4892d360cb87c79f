package auth_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/hostless/hostless/internal/baas/auth"
)

// smtpMail is what the fake SMTP server received.
type smtpMail struct {
	from, to, data string
}

// fakeSMTP speaks just enough of RFC 5321 to take mail, on addr (host:0),
// offering no STARTTLS.
func fakeSMTP(t *testing.T, addr string) (string, <-chan smtpMail) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan smtpMail, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSMTP(conn, got)
		}
	}()
	return ln.Addr().String(), got
}

func serveSMTP(conn net.Conn, got chan<- smtpMail) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(s string) { conn.Write([]byte(s + "\r\n")) }
	say("220 fake ESMTP")
	var m smtpMail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-fake\r\n250 8BITMIME")
		case "MAIL":
			m = smtpMail{from: line}
			say("250 ok")
		case "RCPT":
			m.to = line
			say("250 ok")
		case "DATA":
			say("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.data = b.String()
			got <- m
			say("250 queued")
		case "RSET", "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func TestSMTPVerificationMail(t *testing.T) {
	t.Parallel()
	addr, got := fakeSMTP(t, "127.0.0.1:0")
	m, err := auth.ParseSMTP("smtp://" + addr + "?from=noreply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *auth.Config) { c.Mailer = m; c.PublicURL = "https://app.example.com/" })
	e.signup("ada@example.com", goodPassword)
	var mail smtpMail
	select {
	case mail = <-got:
	default:
		t.Fatal("the sign-up answered before its verification mail was sent")
	}
	if mail.from != "MAIL FROM:<noreply@example.com> BODY=8BITMIME" && mail.from != "MAIL FROM:<noreply@example.com>" {
		t.Errorf("from = %q", mail.from)
	}
	if mail.to != "RCPT TO:<ada@example.com>" {
		t.Errorf("to = %q", mail.to)
	}
	for _, h := range []string{"To: ada@example.com\r\n", "Subject: Confirm your email address\r\n", "\r\n\r\n"} {
		if !strings.Contains(mail.data, h) {
			t.Errorf("the mail lacks %q:\n%s", h, mail.data)
		}
	}
	tok := tokenInMail(t, mail.data)
	e.secret(tok)
	if !strings.Contains(mail.data, "https://app.example.com/v1/auth/verify?token="+tok) {
		t.Errorf("the mail has no link:\n%s", mail.data)
	}
	if len(e.outbox()) != 0 {
		t.Error("with SMTP, mails went to the outbox too")
	}
	e.must(200, "POST", "/v1/auth/verify", map[string]string{"token": tok}, "", nil)
}

// TestSMTPRefusesClearTextOffLoopback: a server that offers no STARTTLS
// gets no mail unless it is on loopback, for the mails carry tokens.
func TestSMTPRefusesClearTextOffLoopback(t *testing.T) {
	t.Parallel()
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback address")
	}
	addr, got := fakeSMTP(t, net.JoinHostPort(ip.String(), "0"))
	m, err := auth.ParseSMTP("smtp://" + addr + "?from=noreply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), "ada@example.com", "hi", "a token")
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send in clear to %s: %v, want a refusal", addr, err)
	}
	select {
	case m := <-got:
		t.Fatalf("the server got a mail: %+v", m)
	default:
	}
}

func TestParseSMTP(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-Pa55"
	m, err := auth.ParseSMTP("smtp://mailer:" + pw + "@mail.example.com?from=noreply@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr != "mail.example.com:587" || m.User != "mailer" || m.Password != pw || m.From != "noreply@example.com" {
		t.Errorf("ParseSMTP = %+v", m)
	}
	for _, raw := range []string{
		"http://mailer:" + pw + "@mail.example.com?from=noreply@example.com",
		"smtp://mailer:" + pw + "@mail.example.com",
		"smtp://mailer:" + pw + "@mail.example.com?from=nobody",
		"smtp://mailer:" + pw + "@mail.example.com:notaport?from=noreply@example.com",
		"smtp://mailer:" + pw + "%zz@mail.example.com?from=noreply@example.com",
		"smtp://mailer:" + pw + "@?from=noreply@example.com",
		"smtp://mailer:" + pw + " @mail.example.com\n?from=noreply@example.com",
	} {
		_, err := auth.ParseSMTP(raw)
		if err == nil {
			t.Errorf("ParseSMTP(%q) = nil error", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("ParseSMTP(%q) = %v: the password shows", raw, err)
		}
	}
}
