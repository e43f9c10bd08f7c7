package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcBackend is a real gRPC server (grpc-go) with the interop TestService and the
// standard health service, on a loopback socket, over h2c or (with tls) h2.
type grpcBackend struct {
	t      testing.TB
	addr   string
	tls    *tls.Config
	health *health.Server
	svc    *testService

	mu  sync.Mutex
	srv *grpc.Server
	wg  sync.WaitGroup
}

// startGRPC serves on 127.0.0.1:0 (or addr, to restart on the same port).
func startGRPC(t testing.TB, addr string, tc *tls.Config, svc *testService) *grpcBackend {
	t.Helper()
	b := &grpcBackend{t: t, tls: tc, health: health.NewServer(), svc: svc}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	b.serve(addr)
	t.Cleanup(b.stop)
	return b
}

func (b *grpcBackend) serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if b.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(b.tls)))
	}
	srv := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(srv, b.svc)
	healthpb.RegisterHealthServer(srv, b.health)
	b.mu.Lock()
	b.srv, b.addr = srv, ln.Addr().String()
	b.mu.Unlock()
	b.wg.Go(func() { _ = srv.Serve(ln) })
}

// stop closes the listener and every connection at once (streams in flight break).
func (b *grpcBackend) stop() {
	b.mu.Lock()
	srv := b.srv
	b.mu.Unlock()
	srv.Stop()
	b.wg.Wait()
}

// restart stops the server and serves again on the same address.
func (b *grpcBackend) restart() {
	b.stop()
	b.serve(b.addr)
}

// testService implements the interop TestService: sizes come from the requests, a
// requested status is returned as the call's status, and each call reports the
// metadata it got in its header as "echo-<key>".
type testService struct {
	testpb.UnimplementedTestServiceServer
	// ended receives the status of every streaming call's context when the handler
	// returns: context.Canceled when the cancellation reached the backend.
	ended chan error
	// started receives a value when a FullDuplexCall began.
	started chan struct{}
}

func newTestService() *testService {
	return &testService{ended: make(chan error, 256), started: make(chan struct{}, 256)}
}

// echoMD sends the incoming metadata back in the header, as echo-<key>.
func echoMD(ctx context.Context) metadata.MD {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, vs := range in {
		if !strings.HasPrefix(k, ":") {
			out["echo-"+k] = vs
		}
	}
	return out
}

func payload(n int32) *testpb.Payload {
	return &testpb.Payload{Body: make([]byte, n)}
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, echoMD(ctx))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "from-backend"))
	if st := req.GetResponseStatus(); st != nil {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	if req.GetFillUsername() { // hold the call until the client's deadline or cancel
		<-ctx.Done()
		s.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	return &testpb.SimpleResponse{Payload: payload(req.GetResponseSize()), Username: req.GetPayload().GetType().String()}, nil
}

func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
			return err
		}
	}
	if rs := req.GetResponseStatus(); rs != nil {
		return status.Error(codes.Code(rs.Code), rs.Message)
	}
	return nil
}

func (s *testService) StreamingInputCall(st grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var sum int32
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(req.GetPayload().GetBody()))
	}
}

// FullDuplexCall answers each request with its response parameters; a request with a
// response status ends the call with it (a cancellation from the backend's side).
func (s *testService) FullDuplexCall(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	s.started <- struct{}{}
	defer func() { s.ended <- st.Context().Err() }()
	_ = st.SendHeader(echoMD(st.Context()))
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if rs := req.GetResponseStatus(); rs != nil {
			return status.Error(codes.Code(rs.Code), rs.Message)
		}
		for _, p := range req.GetResponseParameters() {
			if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
				return err
			}
		}
	}
}
