package status

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"testing"
	"time"

	"tlsgate/internal/certstore"
	"tlsgate/internal/clientauth"
	"tlsgate/internal/config"
	"tlsgate/internal/listener"
)

// cert is a certificate with just what describe reads.
func cert(n int) *x509.Certificate {
	c := &x509.Certificate{SerialNumber: big.NewInt(int64(n)), RawSubjectPublicKeyInfo: []byte{byte(n), byte(n >> 8)}, NotAfter: time.Now().Add(48 * time.Hour)}
	c.Subject.CommonName = fmt.Sprintf("client-%d", n)
	c.DNSNames = []string{fmt.Sprintf("c%d.example", n)}
	return c
}

func hs(n int, at time.Time, reason clientauth.Reason) *listener.Handshake {
	h := &listener.Handshake{Time: at, Listener: "mutual", Client: "127.0.0.1:1", Result: "success", Reason: reason}
	if reason != clientauth.OK {
		h.Result = "failure"
	}
	if n >= 0 {
		c := cert(n)
		h.Presented, h.Subject, h.Serial, h.Fingerprint = c, "CN="+c.Subject.CommonName, fmt.Sprintf("%X", n), fmt.Sprintf("fp%04d", n)
	}
	return h
}

func TestRecorderBounds(t *testing.T) {
	r := NewRecorder(nil)
	now := time.Now()
	for i := range MaxClients + 5 {
		r.Handshake(hs(i, now, clientauth.OK))
	}
	for range MaxRefusals + 7 {
		r.Handshake(hs(-1, now, clientauth.NoClientCert))
	}
	r.Handshake(hs(3, now, clientauth.Revoked)) // an old identity seen again
	v := r.View(Runtime{})
	if len(v.Clients) != MaxClients {
		t.Fatalf("kept %d clients, want %d", len(v.Clients), MaxClients)
	}
	if c := v.Clients[0]; c.Serial != "3" || c.LastVerdict != "revoked" || len(c.Handshakes) != 1 {
		t.Errorf("most recent client = %+v, want serial 3, revoked", c)
	}
	// The 5 first identities were dropped, except 3, seen again (which pushed out 5).
	for _, c := range v.Clients {
		if c.Serial == "0" || c.Serial == "5" {
			t.Errorf("client %s kept beyond the bound", c.Serial)
		}
	}
	if len(v.Refusals) != MaxRefusals || v.Refusals[0].Reason != "revoked" || v.Refusals[1].Reason != "no_client_cert" {
		t.Fatalf("refusals: %d, first %+v", len(v.Refusals), v.Refusals[0])
	}
	if v.Refusals[0].Fix != clientauth.Revoked.Fix() || v.Refusals[0].Fix == "" {
		t.Errorf("fix = %q, want the reason table's", v.Refusals[0].Fix)
	}
	if got := r.RefusalsAfter(v.Refusals[1].Seq); len(got) != 1 || got[0].Reason != "revoked" {
		t.Errorf("RefusalsAfter = %+v", got)
	}
	h := v.Handshakes.Last5
	if h.Success != MaxClients+5 || h.Failure != MaxRefusals+8 || h.ByReason["no_client_cert"] != MaxRefusals+7 {
		t.Errorf("counts = %+v", h)
	}
	if v.TopRefusals[0].Reason != "no_client_cert" || v.TopRefusals[1].Reason != "revoked" {
		t.Errorf("top refusals = %+v", v.TopRefusals)
	}
}

func TestRecorderHandshakesPerClient(t *testing.T) {
	r := NewRecorder(nil)
	now := time.Now()
	for i := range HandshakesPerClient + 3 {
		r.Handshake(hs(1, now.Add(time.Duration(i)*time.Second), clientauth.OK))
	}
	c := r.View(Runtime{}).Clients[0]
	if len(c.Handshakes) != HandshakesPerClient || !c.Handshakes[0].Time.Equal(now.Add((HandshakesPerClient+2)*time.Second)) {
		t.Errorf("handshakes = %d, newest %v", len(c.Handshakes), c.Handshakes[0].Time)
	}
}

func TestCountsWindow(t *testing.T) {
	r := NewRecorder(nil)
	now := time.Now()
	r.Handshake(hs(-1, now.Add(-10*time.Minute), clientauth.NoClientCert))
	r.Handshake(hs(-1, now.Add(-90*time.Minute), clientauth.NoClientCert)) // out of the window
	r.Handshake(hs(-1, now, clientauth.OK))
	v := r.View(Runtime{})
	if h := v.Handshakes; h.Last5.Failure != 0 || h.Last5.Success != 1 || h.Last60.Failure != 1 {
		t.Errorf("counts = %+v", h)
	}
}

func TestSearch(t *testing.T) {
	r := NewRecorder(nil)
	for i := range 20 {
		r.Handshake(hs(i+0x100, time.Now(), clientauth.OK))
	}
	clients := r.View(Runtime{}).Clients
	for _, tc := range []struct{ name, q, want string }{
		{"common name", "client-260", "104"},
		{"SAN", "C261.EXAMPLE", "105"},
		{"serial with leading zero and colons", "01:0A", "10A"},
		{"fingerprint", "fp0266", "10A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Search(clients, tc.q)
			if len(got) != 1 || got[0].Serial != tc.want {
				t.Errorf("Search(%q) = %d clients, want serial %s", tc.q, len(got), tc.want)
			}
		})
	}
}

// BenchmarkHandshake is the cost the observer adds to a handshake of a known client
// and to a refusal without a certificate.
func BenchmarkHandshake(b *testing.B) {
	r := NewRecorder(nil)
	known, refused := hs(1, time.Now(), clientauth.OK), hs(-1, time.Now(), clientauth.NoClientCert)
	b.Run("known client", func(b *testing.B) {
		for b.Loop() {
			r.Handshake(known)
		}
	})
	b.Run("refusal", func(b *testing.B) {
		for b.Loop() {
			r.Handshake(refused)
		}
	})
}

// TestFleetRevision: the view carries the fleet revision of the running config.
func TestFleetRevision(t *testing.T) {
	r := NewRecorder(nil)
	if v := r.View(Runtime{Config: &config.Config{Revision: 42}, Store: &certstore.Store{}}); v.FleetRevision != 42 {
		t.Errorf("fleet revision %d, want 42", v.FleetRevision)
	}
	if v := r.View(Runtime{Config: &config.Config{}, Store: &certstore.Store{}}); v.FleetRevision != 0 {
		t.Errorf("outside fleet mode: %d", v.FleetRevision)
	}
}

// TestRuleRefusal: a request refused by a path rule is a refusal of its client, but not
// a second handshake.
func TestRuleRefusal(t *testing.T) {
	r := NewRecorder(nil)
	r.Handshake(hs(1, time.Now(), clientauth.OK))
	h := hs(1, time.Now(), clientauth.NotAllowed)
	h.Rule = "/admin/"
	r.Handshake(h)
	v := r.View(Runtime{})
	if c := v.Handshakes.Last5; c.Success != 1 || c.Failure != 0 {
		t.Errorf("counts %+v: the refused request counted as a handshake", c)
	}
	if len(v.Refusals) != 1 || v.Refusals[0].Rule != "/admin/" || v.Refusals[0].Reason != "not_allowed" {
		t.Errorf("refusals %+v", v.Refusals)
	}
	if c := v.Clients[0]; c.LastVerdict != "not_allowed" || c.Handshakes[0].Rule != "/admin/" {
		t.Errorf("client %+v", c)
	}
}
