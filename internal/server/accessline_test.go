package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
)

var madeID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestAccessLineFields: a request's line has host, user_agent, request_id, client_ip
// and the upstream timings; the id is made here when the client is not a trusted front
// (its own X-Request-Id is replaced), sent to the backend and back; the serial is
// printed as openssl prints it, in the line and in X-Client-Cert-Serial alike.
func TestAccessLineFields(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	alice := e.ca.Issue("alice")
	hdr := http.Header{"User-Agent": {"ua-test/1.0"}, "X-Request-Id": {"chosen-by-the-client"}}
	resp, body, err := e.request("mutual", e.tlsConfig(tls.VersionTLS13, new(alice.TLS())), hdr, false)
	if err != nil {
		t.Fatal(err)
	}
	seen := decodeEcho(t, resp.StatusCode, body)
	id := resp.Header.Get("X-Request-Id")
	if !madeID.MatchString(id) || seen.Headers["X-Request-Id"] != id {
		t.Errorf("request id: client got %q, backend %q; want one made here, the same", id, seen.Headers["X-Request-Id"])
	}
	serial := certfile.SerialHex(alice.Cert.SerialNumber)
	if seen.Headers["X-Client-Cert-Serial"] != serial {
		t.Errorf("X-Client-Cert-Serial %q, want %q", seen.Headers["X-Client-Cert-Serial"], serial)
	}
	line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "mutual"})
	want := map[string]any{"host": e.addr("mutual"), "user_agent": "ua-test/1.0", "request_id": id, "client_ip": "127.0.0.1", "client_serial": serial}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	for _, k := range []string{"upstream_connect_ms", "upstream_header_ms"} {
		if _, ok := line[k].(float64); !ok {
			t.Errorf("no %s in %v", k, line)
		}
	}

	c, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(tls.VersionTLS13, new(alice.TLS())))
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c, "ping")
	c.Close()
	relay := e.sink.Next(t, map[string]any{"msg": "connection", "listener": "tcpssl"})
	if _, ok := relay["upstream_connect_ms"].(float64); !ok || relay["client_ip"] != "127.0.0.1" || relay["client_serial"] != serial {
		t.Errorf("relay line %v", relay)
	}
}

// TestRequestIDFromTrustedFront: behind an accept_proxy_protocol front, the front's
// X-Request-Id is kept (to the backend, back to the client, in the line); a malformed
// one is replaced.
func TestRequestIDFromTrustedFront(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		return "", "  - {id: behind, protocol: https, listen: 127.0.0.1:0, target_group: web, accept_proxy_protocol: [127.0.0.0/8],\n" +
			"     ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	tr := &http.Transport{
		TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				_, err = c.Write([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n"))
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct{ sent, want string }{
		{"front-1234-abcd", "front-1234-abcd"},
		{"has space", ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+e.addr("behind")+"/x", nil)
		req.Header.Set("X-Request-Id", tc.sent)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen := decodeEcho(t, resp.StatusCode, body)
		got := resp.Header.Get("X-Request-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && !madeID.MatchString(got) || seen.Headers["X-Request-Id"] != got {
			t.Errorf("sent %q: client got %q, backend %q", tc.sent, got, seen.Headers["X-Request-Id"])
		}
		line := e.sink.Next(t, map[string]any{"msg": "request", "listener": "behind"})
		if line["request_id"] != got || line["client_ip"] != "192.0.2.7" {
			t.Errorf("line %v", line)
		}
	}
}
