// Package smtptest runs a real SMTP server for tests: Debian's python3-aiosmtpd on 127.0.0.1, with
// STARTTLS and AUTH required, as a deployment's relay would be (smtpd.py says how it answers). Tests of
// the email channel, of invitations sent by email and of the SLA reports' emails use it; nothing else may
// import it.
package smtptest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

//go:embed smtpd.py
var script []byte

// Server is a running SMTP server.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// TLS trusts the server's certificate, for the client's configuration.
	TLS *tls.Config
	// CertFile is the server's certificate (PEM), for a process that trusts it through SSL_CERT_FILE.
	CertFile string
	received chan Mail
}

// Mail is a message the server accepted.
type Mail struct {
	From          string   `json:"from"`
	To            []string `json:"to"`
	TLS           bool     `json:"tls"`
	Authenticated bool     `json:"authenticated"`
	Data          string   `json:"data"`
}

// Start runs a server that takes logins of user with password until the test ends, or skips the test
// saying what to install.
func Start(t *testing.T, user, password string) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short runs unit tests only; this test runs an SMTP server (python3-aiosmtpd)")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd").Run(); err != nil {
		t.Skip("python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd; .ci/run installs it): " +
			"email is not tested against a real SMTP server")
	}
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "smtpd.py": script}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("/usr/bin/python3", filepath.Join(dir, "smtpd.py"), strconv.Itoa(port), filepath.Join(dir, "cert.pem"),
		filepath.Join(dir, "key.pem"), user, password)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 64<<20) // a message is one line of JSON: a report with attachments is megabytes
	ready := make(chan bool, 1)
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), received: make(chan Mail, 100), TLS: &tls.Config{RootCAs: pool},
		CertFile: filepath.Join(dir, "cert.pem")}
	go func() {
		first := true
		for lines.Scan() {
			if first {
				ready <- lines.Text() == "READY"
				first = false
				continue
			}
			var m Mail
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
			t.Fatal("smtpd.py did not start")
		}
	case <-time.After(time.Minute):
		t.Fatal("smtpd.py did not start within a minute")
	}
	return s
}

// Next waits for the next message the server accepts (a minute at most: a hang guard).
func (s *Server) Next(t *testing.T) Mail {
	t.Helper()
	select {
	case m := <-s.received:
		return m
	case <-time.After(time.Minute):
		t.Fatal("the SMTP server received nothing within a minute")
		return Mail{}
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
