package notify

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smtpServer is Debian's python3-aiosmtpd run by testdata/smtpd.py: STARTTLS and AUTH required.
type smtpServer struct {
	addr     string
	received chan receivedMail
	tls      *tls.Config // trusts the server's certificate
}

type receivedMail struct {
	From          string   `json:"from"`
	To            []string `json:"to"`
	TLS           bool     `json:"tls"`
	Authenticated bool     `json:"authenticated"`
	Data          string   `json:"data"`
}

// startSMTP starts the server, or skips the test saying what to install.
func startSMTP(t *testing.T, user, password string) *smtpServer {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test runs an SMTP server (python3-aiosmtpd)")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").Run(); err != nil {
		t.Skip("python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd; .ci/run installs it): " +
			"the email channel is not tested against a real SMTP server")
	}
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("/usr/bin/python3", "testdata/smtpd.py", strconv.Itoa(port), certFile, keyFile, user, password)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	ready := make(chan bool, 1)
	s := &smtpServer{addr: "127.0.0.1:" + strconv.Itoa(port), received: make(chan receivedMail, 100),
		tls: &tls.Config{RootCAs: pool}}
	go func() {
		first := true
		for lines.Scan() {
			if first {
				ready <- lines.Text() == "READY"
				first = false
				continue
			}
			var m receivedMail
			if json.Unmarshal(lines.Bytes(), &m) == nil {
				s.received <- m
			}
		}
		if first {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("testdata/smtpd.py did not start")
		}
	case <-time.After(time.Minute):
		t.Fatal("testdata/smtpd.py did not start within a minute")
	}
	return s
}

func (s *smtpServer) next(t *testing.T) receivedMail {
	t.Helper()
	select {
	case m := <-s.received:
		return m
	case <-time.After(time.Minute):
		t.Fatal("the SMTP server received nothing within a minute")
		return receivedMail{}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}

// An email goes through a real SMTP server with STARTTLS and AUTH: the server gets the recipients, the
// headers (the subject, a Message-ID carrying the idempotency key) and both parts, the HTML one escaped.
func TestEmailThroughSMTP(t *testing.T) {
	srv := startSMTP(t, "relay-user", "relay-pass")
	s, _ := testSender(t, Config{SMTP: SMTPConfig{URL: "smtp://relay-user:relay-pass@" + srv.addr, From: "alerts@iw.example.com",
		TLS: srv.tls}})
	to := []string{"ops@example.com", "oncall@example.com"}
	out := send(t, s, "email", map[string]any{"to": to}, sampleMessage())
	if out.Err != nil || out.Status != 250 {
		t.Fatalf("send: %+v %q", out, out.ErrorText())
	}
	got := srv.next(t)
	if !got.TLS || !got.Authenticated || got.From != "alerts@iw.example.com" || !slices.Equal(got.To, to) {
		t.Errorf("session: tls %v, auth %v, from %q, to %v", got.TLS, got.Authenticated, got.From, got.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "[FIRING:1, RESOLVED:1] CPU <high> & *hot*" {
		t.Errorf("Subject %q", subject)
	}
	if id := msg.Header.Get("Message-ID"); id != "<infrawatch.notification.101@iw.example.com>" {
		t.Errorf("Message-ID %q: want the idempotency key in it", id)
	}
	if msg.Header.Get("X-Infrawatch-Id") != "101" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", msg.Header)
	}
	if addrs, _ := msg.Header.AddressList("To"); len(addrs) != 2 || addrs[0].Address != to[0] || addrs[1].Address != to[1] {
		t.Errorf("To %v", addrs)
	}
	mediaType, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", mediaType)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, _ := io.ReadAll(p) // multipart decodes quoted-printable
		parts[ct] = string(body)
	}
	plain, html := parts["text/plain"], parts["text/html"]
	for _, want := range []string{"FIRING: CPU > 90% & <rising>", "value 93.5 > threshold 90", "https://iw.example.com/api/v1/alerts/7",
		"resolved at 2030-06-01 11:58 UTC after 10m"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain part lacks %q:\n%s", want, plain)
		}
	}
	for _, want := range []string{`<a href="https://iw.example.com/api/v1/alerts/7">CPU &gt; 90% &amp; &lt;rising&gt;`,
		"on host web-1 &lt;prod&gt;", "<h2>[FIRING:1, RESOLVED:1] CPU &lt;high&gt; &amp; *hot*</h2>"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<rising>") || strings.Contains(html, "<prod>") {
		t.Errorf("HTML part holds user text unescaped:\n%s", html)
	}

	// The relay's refusals: a temporary one is retried, a permanent one and a failed login are final.
	for _, tc := range []struct {
		url   string
		to    string
		retry bool
		code  int
	}{
		{"smtp://relay-user:relay-pass@" + srv.addr, "busy@example.com", true, 451},
		{"smtp://relay-user:relay-pass@" + srv.addr, "nobody@example.com", false, 550},
		{"smtp://relay-user:wrong-pass@" + srv.addr, "ops@example.com", false, 535},
	} {
		s, _ := testSender(t, Config{SMTP: SMTPConfig{URL: tc.url, From: "alerts@iw.example.com", TLS: srv.tls}})
		out := send(t, s, "email", map[string]any{"to": []string{tc.to}}, sampleMessage())
		if out.Err == nil || out.Retry != tc.retry || out.Status != tc.code {
			t.Errorf("%s: %+v %q, want retry %v and %d", tc.to, out, out.ErrorText(), tc.retry, tc.code)
		}
		if strings.Contains(out.ErrorText(), "relay-pass") || strings.Contains(out.ErrorText(), "wrong-pass") {
			t.Errorf("the error quotes the password: %q", out.ErrorText())
		}
	}
	// Without a relay, email channels fail, saying why.
	s, _ = testSender(t, Config{})
	if out := send(t, s, "email", map[string]any{"to": to}, sampleMessage()); out.Err == nil || out.Retry ||
		!strings.Contains(out.ErrorText(), "--smtp-url") {
		t.Errorf("without a relay: %+v", out)
	}
}

// The relay's URL is read as documented, and its mistakes are named without quoting the password.
func TestSMTPURL(t *testing.T) {
	r, err := parseSMTP(SMTPConfig{URL: "smtps://u:p%40ss@mail.example.com", From: "a@example.com"}, time.Second)
	if err != nil || r.port != 465 || !r.implicitTLS || r.user != "u" || r.pass != "p@ss" || r.host != "mail.example.com" {
		t.Errorf("smtps: %+v %v", r, err)
	}
	r, err = parseSMTP(SMTPConfig{URL: "smtp://relay:2525?starttls=opportunistic", From: "a@example.com"}, time.Second)
	if err != nil || r.port != 2525 || r.implicitTLS || r.user != "" {
		t.Errorf("smtp: %+v %v", r, err)
	}
	for _, c := range []SMTPConfig{{URL: "http://x", From: "a@example.com"}, {URL: "smtp://u:secret@x"},
		{URL: "smtp://u:secret@x", From: "not an address"}, {URL: "smtp://x?starttls=maybe", From: "a@example.com"}} {
		_, err := parseSMTP(c, time.Second)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v", c, err)
		}
	}
}
