package clientauth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

func TestMatchURI(t *testing.T) {
	for _, tc := range []struct {
		pattern, uri string
		want         bool
	}{
		{"spiffe://example.org/web", "spiffe://example.org/web", true},
		{"spiffe://example.org/*", "spiffe://example.org/web", true},
		{"spiffe://example.org/*", "spiffe://example.org/ns/web", false},
		{"spiffe://example.org/*", "spiffe://example.org/", false},
		{"spiffe://example.org/**", "spiffe://example.org/ns/prod/sa/web", true},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/web", true},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/api", false},
		{"spiffe://example.org/web", "spiffe://example.org/web/extra", false},
		{"spiffe://example.org/web", "spiffe://example.org.evil.com/web", false},
		{"spiffe://*/web", "spiffe://evil.org/web", true},
		{"spiffe://example.org/**", "spiffe://example.org", false},
	} {
		if got := clientauth.MatchURI(tc.pattern, tc.uri); got != tc.want {
			t.Errorf("MatchURI(%q, %q) = %v, want %v", tc.pattern, tc.uri, got, tc.want)
		}
	}
}

func TestMatchDNS(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"api.example.com", "API.example.com.", true},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "api.example.com.evil", false},
		{"example.com", "evilexample.com", false},
	} {
		if got := clientauth.MatchDNS(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchDNS(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// TestAllowList checks that each field matches only its own kind of name.
func TestAllowList(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	sans := pkitest.Option(func(r *pki.Request) { r.DNS, r.Emails = []string{"web.example.org"}, []string{"Web@Example.org"} })
	svc := ca.Issue("web", pkitest.URI("spiffe://example.org/ns/prod/sa/web"), pkitest.OU("payments"), sans).Cert
	sum := sha256.Sum256(svc.RawSubjectPublicKeyInfo)
	for _, tc := range []struct {
		name  string
		allow *clientauth.AllowList
		want  bool
	}{
		{"nil allows all", nil, true},
		{"cn", &clientauth.AllowList{CN: []string{"web"}}, true},
		{"cn is exact", &clientauth.AllowList{CN: []string{"we"}}, false},
		{"ou", &clientauth.AllowList{OU: []string{"payments"}}, true},
		{"uri", &clientauth.AllowList{URI: []string{"spiffe://example.org/ns/*/sa/web"}}, true},
		{"uri in dns field does not match", &clientauth.AllowList{DNS: []string{"spiffe://example.org/ns/prod/sa/web"}}, false},
		{"cn in uri field does not match", &clientauth.AllowList{URI: []string{"web"}}, false},
		{"dns", &clientauth.AllowList{DNS: []string{"web.example.org"}}, true},
		{"dns wildcard, one label", &clientauth.AllowList{DNS: []string{"*.example.org"}}, true},
		{"dns wildcard is one label only", &clientauth.AllowList{DNS: []string{"*.org"}}, false},
		{"email, case-insensitive", &clientauth.AllowList{Email: []string{"web@example.org"}}, true},
		{"other email", &clientauth.AllowList{Email: []string{"ops@example.org"}}, false},
		{"email in cn field does not match", &clientauth.AllowList{CN: []string{"Web@Example.org"}}, false},
		{"spki pin", &clientauth.AllowList{SPKISHA256: []string{hex.EncodeToString(sum[:])}}, true},
		{"other pin", &clientauth.AllowList{SPKISHA256: []string{hex.EncodeToString(make([]byte, 32))}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.allow.Allows(svc); got != tc.want {
				t.Fatalf("Allows = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestForgedPin: a certificate with the same subject and serial as an allowed one but
// another key fails a SPKI pin (S7).
func TestForgedPin(t *testing.T) {
	ca := pkitest.New(t, "root", pki.ECDSAP256)
	real := ca.Issue("web").Cert
	forged := pkitest.New(t, "root", pki.ECDSAP256).Issue("web").Cert
	sum := sha256.Sum256(real.RawSubjectPublicKeyInfo)
	a := &clientauth.AllowList{SPKISHA256: []string{hex.EncodeToString(sum[:])}}
	if !a.Allows(real) || a.Allows(forged) {
		t.Fatal("pin must allow the real key only")
	}
}

func FuzzMatchURI(f *testing.F) {
	f.Add("spiffe://example.org/**", "spiffe://example.org/a/b")
	f.Add("spiffe://*/a", "spiffe://x/a")
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		got := clientauth.MatchURI(pattern, uri)
		if pattern == uri && !got {
			t.Fatalf("pattern %q does not match itself", pattern)
		}
	})
}
