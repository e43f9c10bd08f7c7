package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
)

// grpcEnv is a tlsgate with gRPC backends behind mutual listeners: grpc_h2c forwards
// to a backend over h2c, grpc_h2 to one over TLS that requires tlsgate's client
// certificate (mTLS origination); grpc_opt is optional with a rule whose allow-list no
// test client is on.
type grpcEnv struct {
	*env
	h2c, h2 *grpcBackend
	svc     *testService
	client  tls.Certificate
}

func newGRPCEnv(t *testing.T, groupExtra string) *grpcEnv {
	g := &grpcEnv{svc: newTestService()}
	g.env = newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		backendCA := pkitest.New(t, "backend CA", pki.ECDSAP256)
		pkitest.Write(t, e.dir, "backend-ca.crt", backendCA.PEM())
		e.ca.Issue("tlsgate-origin").WritePair(t, e.dir, "origin")
		g.h2c = startGRPC(t, "", nil, g.svc)
		g.h2 = startGRPC(t, "", &tls.Config{
			Certificates: []tls.Certificate{backendCA.Issue("backend.internal", pkitest.Server("backend.internal")).TLS()},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: e.ca.Pool(), NextProtos: []string{"h2"},
		}, g.svc)
		for _, b := range []*grpcBackend{g.h2c, g.h2} {
			b.health.SetServingStatus(grpcService, healthpb.HealthCheckResponse_SERVING)
		}
		e.groups = fmt.Sprintf("  - {id: g_h2c, protocol: h2c, targets: [{address: %s}]%s}\n", g.h2c.addr, groupExtra) +
			fmt.Sprintf("  - {id: g_h2, protocol: h2, targets: [{address: %s}], tls: {ca_certificate: backend_ca, server_name: backend.internal, client_certificate: origin}%s}\n", g.h2.addr, groupExtra)
		mutual := "ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, refusal: http}"
		return "  - {id: backend_ca, ca: backend-ca.crt}\n  - {id: origin, cert: origin.crt, key: origin.key}\n",
			"  - {id: grpc_h2c, protocol: https, listen: 127.0.0.1:0, target_group: g_h2c, " + mutual + "}\n" +
				"  - {id: grpc_h2, protocol: https, listen: 127.0.0.1:0, target_group: g_h2, " + mutual + "}\n" +
				"  - {id: grpc_oneway, protocol: https, listen: 127.0.0.1:0, target_group: g_h2, ssl: {mode: one_way, server_certificates: [site]}}\n" +
				"  - {id: grpc_opt, protocol: https, listen: 127.0.0.1:0, target_group: g_h2c, rules: [{path: /grpc.testing.TestService/, allow: {cn: [nobody]}}],\n" +
				"     ssl: {mode: optional, server_certificates: [site], ca_certificate: clients}}\n" +
				"  - {id: grpc_xfcc, protocol: https, listen: 127.0.0.1:0, target_group: g_h2c, forward_client_cert: xfcc, " + mutual + "}\n" +
				"  - {id: grpc_rfc9440, protocol: https, listen: 127.0.0.1:0, target_group: g_h2, forward_client_cert: rfc9440, " + mutual + "}\n"
	})
	g.client = g.ca.Issue("grpc-client").TLS()
	return g
}

// dial is a grpc-go client connection to listener id presenting cert (none when nil).
func (g *grpcEnv) dial(t *testing.T, id string, cert *tls.Certificate) testpb.TestServiceClient {
	cc, err := grpc.NewClient("passthrough:///"+g.addr(id), grpc.WithTransportCredentials(credentials.NewTLS(g.tlsConfig(tls.VersionTLS13, cert))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("status %v %q, want %v with %q", st.Code(), st.Message(), code, msg)
	}
}

// TestGRPC: the four kinds of call with large and many messages, trailers, deadlines
// and cancellation, through a mutual listener to a gRPC backend over h2c and over h2
// with mTLS origination.
func TestGRPC(t *testing.T) {
	g := newGRPCEnv(t, "")
	for _, id := range []string{"grpc_h2c", "grpc_h2"} {
		t.Run(id, func(t *testing.T) {
			c := g.dial(t, id, &g.client)
			t.Run("unary", func(t *testing.T) { testUnary(t, c) })
			t.Run("server_stream", func(t *testing.T) { testServerStream(t, c) })
			t.Run("client_stream", func(t *testing.T) { testClientStream(t, c) })
			t.Run("bidi", func(t *testing.T) { testBidi(t, c) })
			t.Run("status_and_trailers", func(t *testing.T) { testStatus(t, c) })
			t.Run("deadline", func(t *testing.T) { testDeadline(t, c, g.svc) })
			t.Run("client_cancel", func(t *testing.T) { testClientCancel(t, c, g.svc) })
			t.Run("concurrent", func(t *testing.T) { testConcurrent(t, c, g.svc) })
		})
	}
}

func testUnary(t *testing.T, c testpb.TestServiceClient) {
	var hdr, trl metadata.MD
	resp, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{ResponseSize: 1 << 20, Payload: payload(1 << 20)}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetPayload().GetBody()); n != 1<<20 {
		t.Fatalf("response of %d bytes", n)
	}
	if v := trl.Get("x-trailer"); len(v) != 1 || v[0] != "from-backend" {
		t.Fatalf("trailer metadata %v", trl)
	}
	if v := hdr.Get("echo-x-client-verify"); len(v) != 1 || v[0] != "SUCCESS" {
		t.Fatalf("backend saw x-client-verify %v", v)
	}
}

func testServerStream(t *testing.T, c testpb.TestServiceClient) {
	var params []*testpb.ResponseParameters
	for i := range 1000 {
		size := int32(1 << 10)
		if i%250 == 0 {
			size = 1 << 20
		}
		params = append(params, &testpb.ResponseParameters{Size: size})
	}
	st, err := c.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range params {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.GetPayload().GetBody()) != int(p.Size) {
			t.Fatalf("message %d has %d bytes, want %d", i, len(m.GetPayload().GetBody()), p.Size)
		}
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
}

func testClientStream(t *testing.T, c testpb.TestServiceClient) {
	st, err := c.StreamingInputCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range 1000 {
		n := 1 << 10
		if i%250 == 0 {
			n = 1 << 20
		}
		want += n
		if err := st.Send(&testpb.StreamingInputCallRequest{Payload: payload(int32(n))}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	resp, err := st.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.GetAggregatedPayloadSize()) != want {
		t.Fatalf("backend got %d bytes, want %d", resp.GetAggregatedPayloadSize(), want)
	}
}

// testBidi: each message is answered before the next is sent, so nothing may wait for a
// buffer to fill (ping-pong), and the header the backend sends first arrives at once.
func testBidi(t *testing.T, c testpb.TestServiceClient) {
	st, err := c.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		size := int32(i * 100)
		if err := st.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: size}}}); err != nil {
			t.Fatal(err)
		}
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if len(m.GetPayload().GetBody()) != int(size) {
			t.Fatalf("answer %d has %d bytes", i, len(m.GetPayload().GetBody()))
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
}

// testStatus: a backend's status and message reach the client unchanged, from a unary
// call (trailers-only), after a stream's messages, and when the backend ends a bidi
// call from its side.
func testStatus(t *testing.T, c testpb.TestServiceClient) {
	msg := "nöt found: 100% \"gone\"\twith\ttabs"
	_, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: msg}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != msg {
		t.Fatalf("unary status %v %q", st.Code(), st.Message())
	}
	ss, err := c.StreamingOutputCall(t.Context(), &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 10}},
		ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "quota"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := ss.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ss.Recv()
	wantCode(t, err, codes.ResourceExhausted, "quota")
	bs, err := c.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "backend gave up"}}); err != nil {
		t.Fatal(err)
	}
	_, err = bs.Recv()
	wantCode(t, err, codes.Aborted, "backend gave up")
}

// testDeadline: a call whose deadline passes ends with DEADLINE_EXCEEDED, and the
// backend's handler sees its context end (grpc-timeout passed on, the stream reset).
func testDeadline(t *testing.T, c testpb.TestServiceClient, svc *testService) {
	drain(svc.ended)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{FillUsername: true})
	wantCode(t, err, codes.DeadlineExceeded, "")
	if err := waitEnded(t, svc); err == nil {
		t.Fatal("the backend's call did not end")
	}
}

// testClientCancel: a client cancelling a stream ends the backend's handler.
func testClientCancel(t *testing.T, c testpb.TestServiceClient, svc *testService) {
	drain(svc.ended)
	ctx, cancel := context.WithCancel(t.Context())
	st, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := waitEnded(t, svc); !errors.Is(err, context.Canceled) {
		t.Fatalf("backend's stream ended with %v, want it cancelled", err)
	}
	_, err = st.Recv()
	wantCode(t, err, codes.Canceled, "")
}

// testConcurrent: 100 streams open at once over one client connection all work.
func testConcurrent(t *testing.T, c testpb.TestServiceClient, svc *testService) {
	const n = 100
	drain(svc.started)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	release := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			st, err := c.FullDuplexCall(t.Context())
			if err == nil {
				err = st.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: int32(i)}}})
			}
			if err == nil {
				_, err = st.Recv()
			}
			<-release // every stream is open at once
			if err == nil {
				err = st.CloseSend()
			}
			if err == nil {
				_, err = st.Recv()
				if errors.Is(err, io.EOF) {
					err = nil
				}
			}
			errs <- err
		})
	}
	for range n {
		select {
		case <-svc.started:
		case <-time.After(20 * time.Second):
			t.Fatal("not every stream reached the backend")
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func drain[T any](ch chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitEnded(t *testing.T, svc *testService) error {
	t.Helper()
	select {
	case err := <-svc.ended:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's handler did not end")
		return nil
	}
}

// TestGRPCRefusal: a gRPC call refused at the gateway gets a gRPC status with the
// reason code, not an HTML page: UNAUTHENTICATED without a certificate or with a
// revoked one (refusal: http), PERMISSION_DENIED for a verified client not on a
// rule's allow-list, UNAUTHENTICATED for no certificate on that rule; under refusal:
// handshake only the connection fails (UNAVAILABLE).
func TestGRPCRefusal(t *testing.T) {
	g := newGRPCEnv(t, "")
	revoked := g.revoked.TLS()
	for _, tc := range []struct {
		name, listener string
		cert           *tls.Certificate
		code           codes.Code
		msg            string
	}{
		{"no certificate", "grpc_h2c", nil, codes.Unauthenticated, "no_client_cert"},
		{"revoked", "grpc_h2c", &revoked, codes.Unauthenticated, "revoked"},
		{"not on the allow-list", "grpc_opt", &g.client, codes.PermissionDenied, "not_allowed"},
		{"no certificate for the rule", "grpc_opt", nil, codes.Unauthenticated, "no_client_cert"},
		// refusal: handshake (the default): no request; the client's connection error
		// names the alert or, when it wrote first, the closed connection.
		{"handshake refusal", "mutual", nil, codes.Unavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := g.dial(t, tc.listener, tc.cert)
			if tc.listener == "mutual" {
				_, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{})
				wantCode(t, err, tc.code, tc.msg)
				return
			}
			counter := g.metrics.GRPCRequests.WithLabelValues(tc.listener, fmt.Sprint(int(tc.code)))
			before := testutil.ToFloat64(counter)
			_, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{})
			wantCode(t, err, tc.code, tc.msg)
			g.sink.Next(t, map[string]any{"msg": "request", "listener": tc.listener, "grpc_status": fmt.Sprint(int(tc.code))})
			if n := testutil.ToFloat64(counter) - before; n != 1 {
				t.Errorf("tlsgate_grpc_requests_total{grpc_status=%d} rose by %v", tc.code, n)
			}
		})
	}
}

// TestGRPCOneWay: a one-way listener forwards gRPC as well; the backend is told no
// client certificate was verified, whatever the client claims.
func TestGRPCOneWay(t *testing.T) {
	g := newGRPCEnv(t, "")
	c := g.dial(t, "grpc_oneway", nil)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-client-verify", "SUCCESS")
	var hdr metadata.MD
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 10}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPayload().GetBody()) != 10 {
		t.Fatalf("response %v", resp)
	}
	if v := hdr.Get("echo-x-client-verify"); len(v) != 1 || v[0] != "NONE" {
		t.Fatalf("backend saw x-client-verify %v", v)
	}
}

// TestGRPCSpoofedIdentity: identity metadata a client sends is stripped; the backend
// sees only what tlsgate sets from the verified certificate.
func TestGRPCSpoofedIdentity(t *testing.T) {
	g := newGRPCEnv(t, "")
	c := g.dial(t, "grpc_h2c", &g.client)
	ctx := metadata.AppendToOutgoingContext(t.Context(),
		"x-client-cert-subject", "CN=admin", "x-client-verify", "FORGED",
		"x-forwarded-client-cert", "Hash=evil", "client-cert", ":ZXZpbA==:", "x_ssl_client_cn", "admin",
		"x-real-ip", "203.0.113.9", "true-client-ip", "203.0.113.9", "x-forwarded-prefix", "/evil")
	var hdr metadata.MD
	if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if v := hdr.Get("echo-x-client-cert-subject"); len(v) != 1 || !strings.Contains(v[0], "CN=grpc-client") {
		t.Fatalf("backend saw subject %v", v)
	}
	if v := hdr.Get("echo-x-client-verify"); len(v) != 1 || v[0] != "SUCCESS" {
		t.Fatalf("backend saw x-client-verify %v", v)
	}
	for _, k := range []string{"echo-x-forwarded-client-cert", "echo-client-cert", "echo-x_ssl_client_cn", "echo-x-real-ip", "echo-true-client-ip", "echo-x-forwarded-prefix"} {
		if v := hdr.Get(k); len(v) > 0 {
			t.Errorf("backend saw %s %v", k, v)
		}
	}
	line := g.sink.Next(t, map[string]any{"msg": "request", "listener": "grpc_h2c", "grpc_status": "0", "target": g.h2c.addr})
	if _, ok := line["upstream_header_ms"]; !ok {
		t.Errorf("request line without upstream_header_ms: %v", line)
	}
}

// TestGRPCIdentityDialects (issue 16): with forward_client_cert xfcc or rfc9440 the
// verified identity reaches a gRPC service as that dialect's metadata, and what the
// client sent under either dialect's names is replaced or dropped, as for HTTP.
func TestGRPCIdentityDialects(t *testing.T) {
	g := newGRPCEnv(t, "")
	der := base64.StdEncoding.EncodeToString(g.client.Certificate[0])
	for _, tc := range []struct{ listener, key, want, other string }{
		{"grpc_xfcc", "x-forwarded-client-cert", "Subject=\"CN=grpc-client\"", "client-cert"},
		{"grpc_rfc9440", "client-cert", ":" + der + ":", "x-forwarded-client-cert"},
	} {
		t.Run(tc.listener, func(t *testing.T) {
			c := g.dial(t, tc.listener, &g.client)
			ctx := metadata.AppendToOutgoingContext(t.Context(),
				"x-forwarded-client-cert", "Hash=evil", "client-cert", ":ZXZpbA==:")
			var hdr metadata.MD
			if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
				t.Fatal(err)
			}
			if v := hdr.Get("echo-" + tc.key); len(v) != 1 || !strings.Contains(v[0], tc.want) || strings.Contains(v[0], "evil") {
				t.Fatalf("backend saw %s %q, want it to hold %q", tc.key, v, tc.want)
			}
			if v := hdr.Get("echo-" + tc.other); len(v) > 0 {
				t.Fatalf("backend saw the client's %s %q", tc.other, v)
			}
		})
	}
}

// TestGRPCBackendRestart: a backend stopping mid-stream ends the call with a clean
// UNAVAILABLE (no hang), and calls work again once it is back on the same address; a
// backend that is gone gives UNAVAILABLE too.
func TestGRPCBackendRestart(t *testing.T) {
	g := newGRPCEnv(t, "")
	c := g.dial(t, "grpc_h2c", &g.client)
	st, err := c.FullDuplexCall(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	g.h2c.restart()
	_, err = st.Recv()
	wantCode(t, err, codes.Unavailable, "broke off")
	if _, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{ResponseSize: 10}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	// Gone: the call cannot be placed (UNAVAILABLE, not an HTTP 502). The group's only
	// target is never ejected (outlier detection keeps the last available target), so
	// each call tries it again: it is served as soon as the backend is back.
	g.h2c.stop()
	for range 3 {
		_, err = c.UnaryCall(t.Context(), &testpb.SimpleRequest{})
		wantCode(t, err, codes.Unavailable, "tlsgate: the backend ")
	}
}

// grpcService is the service the backends' health servers report on.
const grpcService = "grpc.testing.TestService"

// TestGRPCHealthCheck: a grpc health check marks a target down when its health
// service says NOT_SERVING for the configured service (calls then get UNAVAILABLE from
// the gateway) and up again when it serves; over h2c, and over TLS presenting the
// group's client certificate to a backend that requires one.
func TestGRPCHealthCheck(t *testing.T) {
	// panic_threshold: 0, else a group's only target, down, would get calls anyway.
	g := newGRPCEnv(t, ", panic_threshold: 0, health_check: {protocol: grpc, service: "+grpcService+", interval: 200ms, timeout: 200ms, healthy_threshold: 1, unhealthy_threshold: 2}")
	for _, tc := range []struct {
		listener, group string
		backend         *grpcBackend
	}{{"grpc_h2c", "g_h2c", g.h2c}, {"grpc_h2", "g_h2", g.h2}} {
		t.Run(tc.group, func(t *testing.T) {
			c := g.dial(t, tc.listener, &g.client)
			if _, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
			tc.backend.health.SetServingStatus(grpcService, healthpb.HealthCheckResponse_NOT_SERVING)
			g.sink.Next(t, map[string]any{"msg": "target unhealthy", "group": tc.group})
			_, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{})
			wantCode(t, err, codes.Unavailable, "no healthy backend")
			tc.backend.health.SetServingStatus(grpcService, healthpb.HealthCheckResponse_SERVING)
			g.sink.Next(t, map[string]any{"msg": "target healthy", "group": tc.group})
			if _, err := c.UnaryCall(t.Context(), &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkGRPCUnary: unary calls through a mutual listener to an h2c backend, 32 in
// flight on one client connection (in-process: for profiles and allocation counts;
// bench/grpcbench compares with nginx).
func BenchmarkGRPCUnary(b *testing.B) {
	g := &grpcEnv{svc: newTestService()}
	g.env = newEnv(b, pki.ECDSAP256, func(e *env) (string, string) {
		g.h2c = startGRPC(b, "", nil, g.svc)
		e.groups = fmt.Sprintf("  - {id: g_h2c, protocol: h2c, targets: [{address: %s}]}\n", g.h2c.addr)
		return "", "  - {id: grpc_h2c, protocol: https, listen: 127.0.0.1:0, target_group: g_h2c, forward_client_cert: none,\n" +
			"     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}\n"
	})
	cert := g.ca.Issue("bench").TLS()
	cc, err := grpc.NewClient("passthrough:///"+g.addr("grpc_h2c"), grpc.WithTransportCredentials(credentials.NewTLS(g.tlsConfig(tls.VersionTLS13, &cert))))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	req := &testpb.SimpleRequest{ResponseSize: 100, Payload: payload(100)}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.UnaryCall(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestGRPCDeadlineNotCharged: a call whose grpc-timeout passes before the backend
// answers ended by the client's choice, not by a fault of the target: however many
// there are, no target is ejected (outlier detection counts connect failures and
// response_timeout, which gRPC calls do not have).
func TestGRPCDeadlineNotCharged(t *testing.T) {
	svc := newTestService()
	a, b := startGRPC(t, "", nil, svc), startGRPC(t, "", nil, svc)
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.groups = fmt.Sprintf("  - {id: g, protocol: h2c, outlier: {consecutive_failures: 2, base_ejection: 1h}, targets: [{address: %s}, {address: %s}]}\n", a.addr, b.addr)
		return "", "  - {id: l, protocol: https, listen: 127.0.0.1:0, target_group: g, ssl: {mode: one_way, server_certificates: [site]}}\n"
	})
	g := &grpcEnv{env: e, svc: svc}
	c := g.dial(t, "l", nil)
	for range 6 {
		drain(svc.ended)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{FillUsername: true})
		cancel()
		wantCode(t, err, codes.DeadlineExceeded, "")
		if err := waitEnded(t, svc); err == nil {
			t.Fatal("the backend's call did not end")
		}
	}
	for _, grp := range e.srv.Status().TargetGroups {
		for _, tg := range grp.Targets {
			if tg.Health == "ejected" {
				t.Fatalf("target %s ejected for its clients' deadlines", tg.Address)
			}
		}
	}
}
