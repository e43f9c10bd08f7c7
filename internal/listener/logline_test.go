package listener

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"tlsgate/internal/clientauth"
	"tlsgate/internal/logsink"
)

// requestLine is a keep-alive request's line as the bench's one-way listener logs it.
func requestLine() *Line {
	return &Line{
		Msg: "request", Listener: "bench", Client: "127.0.0.1:53124",
		TLSVersion: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", SNI: "localhost", ALPN: "http/1.1",
		Verify: "NONE", Target: "127.0.0.1:24180", Method: "GET", Host: "127.0.0.1:24543", Path: "/1k",
		UserAgent: "loadgen/1.0", RequestID: "6f1c0e4b9a2d4c7e8f0a1b2c3d4e5f60", Status: 200,
		BytesOut: 1024, UpstreamConnect: 12 * time.Microsecond, UpstreamHeader: 187 * time.Microsecond,
		Duration: 254 * time.Microsecond,
	}
}

// pinned are whole lines in the format README's Logs section documents (the field
// names, their order, what is left out when empty, the JSON of slog's handler): the
// bytes must not change when the way they are made does.
var pinned = []struct {
	line *Line
	want string
}{
	{requestLine(), `{"time":"2026-12-04T19:07:20.123456789Z","level":"INFO","msg":"request","listener":"bench","client":"127.0.0.1:53124","client_ip":"127.0.0.1","tls_version":"TLS 1.3","cipher":"TLS_AES_128_GCM_SHA256","sni":"localhost","alpn":"http/1.1","resumed":false,"verify":"NONE","target":"127.0.0.1:24180","method":"GET","host":"127.0.0.1:24543","path":"/1k","user_agent":"loadgen/1.0","request_id":"6f1c0e4b9a2d4c7e8f0a1b2c3d4e5f60","status":200,"bytes_in":0,"bytes_out":1024,"upstream_connect_ms":0.012,"upstream_header_ms":0.187,"duration_ms":0.254}` + "\n"},
	{&Line{
		Msg: "handshake", Listener: "mutual", Client: "[::ffff:10.1.2.3]:443", TLSVersion: "TLS 1.2",
		Cipher: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", SNI: "api.example.com", Resumed: true,
		Subject: "CN=Ünï \"q\" <x>\\,O=a\nb\x01\u2028", Serial: "0A1B", Fingerprint: "ab:cd",
		Verify: "FAILED:revoked", Reason: clientauth.Revoked, Grace: true, Audit: "expired",
		Handshake: 1500 * time.Microsecond, Duration: 2*time.Second + 5*time.Microsecond, Err: errors.New("bad\xffcert"),
	}, `{"time":"2026-12-04T19:07:20.123456789Z","level":"WARN","msg":"handshake","listener":"mutual","client":"[::ffff:10.1.2.3]:443","client_ip":"10.1.2.3","tls_version":"TLS 1.2","cipher":"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256","sni":"api.example.com","resumed":true,"client_subject":"CN=Ünï \"q\" <x>\\,O=a\nb\u0001\u2028","client_serial":"0A1B","client_fingerprint":"ab:cd","verify":"FAILED:revoked","reason":"revoked","client_grace":true,"audit":"expired","handshake_ms":1.5,"duration_ms":2000.005,"error":"bad\ufffdcert"}` + "\n"},
	{&Line{
		Msg: "connection", Listener: "tcp", Client: "@", Target: "10.0.0.1:80", BytesIn: 1 << 40, BytesOut: 7,
		UpstreamConnect: time.Hour, Duration: 0,
	}, `{"time":"2026-12-04T19:07:20.123456789Z","level":"INFO","msg":"connection","listener":"tcp","client":"@","target":"10.0.0.1:80","bytes_in":1099511627776,"bytes_out":7,"upstream_connect_ms":3600000,"duration_ms":0}` + "\n"},
	{&Line{
		Msg: "request", Listener: "grpc", Client: "127.0.0.1:1", TLSVersion: "TLS 1.3", Method: "POST",
		Path: "/svc.A/B", Status: 499, GRPCStatus: "unknown", Duration: 3 * time.Nanosecond, Err: errors.New("client closed request"),
	}, `{"time":"2026-12-04T19:07:20.123456789Z","level":"WARN","msg":"request","listener":"grpc","client":"127.0.0.1:1","client_ip":"127.0.0.1","tls_version":"TLS 1.3","resumed":false,"method":"POST","path":"/svc.A/B","status":499,"grpc_status":"unknown","bytes_in":0,"bytes_out":0,"duration_ms":0,"error":"client closed request"}` + "\n"},
}

var pinnedAt = time.Date(2026, 12, 4, 19, 7, 20, 123456789, time.UTC)

// TestLinePinned: each line is written byte for byte as pinned, by the project's JSON
// handler and by slog's own (what the format is defined as).
func TestLinePinned(t *testing.T) {
	t.Parallel()
	for i, tc := range pinned {
		for name, h := range map[string]func(io.Writer) slog.Handler{
			"logsink": logsink.NewJSONHandler,
			"slog":    func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		} {
			var b bytes.Buffer
			tc.line.logAt(context.Background(), slog.New(h(&b)), pinnedAt)
			if b.String() != tc.want {
				t.Errorf("line %d through %s:\n got %s\nwant %s", i, name, b.String(), tc.want)
			}
		}
	}
}

// TestLineMatchesSlog: lines of every kind, with the strings clients and certificates
// can carry, are written by the JSON handler (fields encoded by appendJSON) byte for
// byte as slog's handler writes them from the line's attributes.
func TestLineMatchesSlog(t *testing.T) {
	t.Parallel()
	strs := []string{"", "a", "127.0.0.1:443", "[::1]:8443", "q\"uo\\te", "a\nb\x00\x7f", "<script>&", "Ünï ✓ 日本", "bad\xffutf8\xc3", "sep\u2028\u2029", "/a/very/long/path/that/spans/several/words?x=1"}
	durs := []time.Duration{0, -time.Microsecond, 999, time.Microsecond, 1500 * time.Microsecond, time.Hour, 13 * 24 * time.Hour, 123456789}
	rng := rand.New(rand.NewPCG(9, 10))
	str := func() string { return strs[rng.IntN(len(strs))] }
	dur := func() time.Duration { return durs[rng.IntN(len(durs))] + time.Duration(rng.Int64N(1e9)) }
	shared, first := new(connJSON), (*Line)(nil)
	for i := range 5000 {
		l := &Line{
			Msg: []string{"request", "handshake", "connection"}[i%3], Listener: str(), Client: str(),
			TLSVersion: str(), Cipher: str(), SNI: str(), ALPN: str(), Resumed: rng.IntN(2) == 0,
			Subject: str(), Serial: str(), Fingerprint: str(), Verify: str(), Reason: clientauth.Reason(str()),
			Grace: rng.IntN(2) == 0, Audit: str(), Target: str(), Method: str(), Host: str(), Path: str(),
			UserAgent: str(), RequestID: str(), Status: rng.IntN(3) * 200, GRPCStatus: str(),
			BytesIn: rng.Int64N(1 << 40), BytesOut: rng.Int64N(1<<40) - 1<<20,
			UpstreamConnect: dur(), UpstreamHeader: dur(), Handshake: dur(), Duration: dur(),
		}
		if rng.IntN(3) == 0 {
			l.Err = errors.New(str())
		}
		// Lines of one connection share its JSON (setTLS): half of them with the
		// connection fields of the line that made it, the others with their own.
		l.conn = shared
		if first == nil {
			first = l
		} else if rng.IntN(2) == 0 {
			c := connFields(first)
			l.Listener, l.Client, l.TLSVersion, l.Cipher, l.SNI, l.ALPN, l.Resumed = c.Listener, c.Client, c.TLSVersion, c.Cipher, c.SNI, c.ALPN, c.Resumed
			l.Subject, l.Serial, l.Fingerprint, l.Verify, l.Reason, l.Grace, l.Audit = c.Subject, c.Serial, c.Fingerprint, c.Verify, c.Reason, c.Grace, c.Audit
		}
		at := pinnedAt.Add(time.Duration(rng.Int64N(1e12))).In([]*time.Location{time.UTC, time.Local, time.FixedZone("x", -9000)}[i%3])
		var fast, std bytes.Buffer
		l.logAt(context.Background(), slog.New(logsink.NewJSONHandler(&fast)), at)
		l.logAt(context.Background(), slog.New(slog.NewJSONHandler(&std, nil)), at)
		if fast.String() != std.String() {
			t.Fatalf("line %d:\n fast %s\n slog %s", i, fast.String(), std.String())
		}
	}
}
