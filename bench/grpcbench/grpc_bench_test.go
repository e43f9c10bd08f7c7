// Package grpcbench measures gRPC through tlsgate beside nginx's grpc_pass in one run:
// unary calls and 1 MiB server streams over one kept-alive mutual-TLS client
// connection, to the same grpc-go backend over h2c. Each proxy runs as its own process
// pinned to core 0 (taskset), and the figures are per second of the proxy's CPU time
// (/proc/PID/stat), so they read as "per server core" whatever the load generator
// costs. Run the load generator and backend on the other core:
//
//	taskset -c 1 go test -run '^$' -bench . -benchtime 20000x ./bench/grpcbench
//
// It needs nginx and taskset, and skips without them (fails under CI=true; a benchmark,
// never run by go test ./...). A proxy that fails to start, or fails a call, fails the
// benchmark with the end of its output (nginx's error log goes to its stderr).
package grpcbench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/proxytest"
	"tlsgate/internal/tooltest"
)

// service is the backend: a small unary answer, and streams of the sizes asked for.
type service struct {
	testpb.UnimplementedTestServiceServer
}

func (service) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, req.GetResponseSize())}}, nil
}

func (service) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		if err := st.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

// proxy is a running proxy process.
type proxy struct {
	name string
	addr string
	cmd  *exec.Cmd
	proc *proxytest.Process
}

// failed describes a call's failure with the end of the proxy's output.
func (p *proxy) failed(err error) string {
	return fmt.Sprintf("%s: %v; its output's end:\n%s", p.name, err, p.proc.Output())
}

// cpu is the CPU time the proxy's processes (the process and its children) used.
func (p *proxy) cpu(tb testing.TB) time.Duration {
	pids := []int{p.cmd.Process.Pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && ppid(pid) == p.cmd.Process.Pid {
			pids = append(pids, pid)
		}
	}
	var ticks int64
	for _, pid := range pids {
		f := statFields(pid)
		if len(f) < 15 {
			tb.Fatalf("no /proc/%d/stat", pid)
		}
		u, _ := strconv.ParseInt(f[13], 10, 64)
		s, _ := strconv.ParseInt(f[14], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// statFields are the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	// Fields 1 and 2 (pid, comm) precede ')': keep the numbering of proc(5).
	return append([]string{"pid", "comm"}, strings.Fields(s[i+1:])...)
}

func ppid(pid int) int {
	f := statFields(pid)
	if len(f) < 4 {
		return 0
	}
	n, _ := strconv.Atoi(f[3])
	return n
}

// setup starts the backend and both proxies, and returns them with the client's TLS
// settings.
func setup(b *testing.B) ([]*proxy, credentials.TransportCredentials) {
	nginx, taskset := tooltest.Path(b, "nginx"), tooltest.Path(b, "taskset")
	dir := b.TempDir()
	ca := pkitest.New(b, "bench CA", pki.ECDSAP256)
	ca.Issue("localhost", pkitest.Server("localhost", "127.0.0.1")).WritePair(b, dir, "server")
	pkitest.Write(b, dir, "ca.crt", ca.PEM())
	client := ca.Issue("bench-client").TLS()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, service{})
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	b.Cleanup(func() { srv.Stop(); <-done })
	backend := ln.Addr().String()

	ps := []*proxy{startTlsgate(b, taskset, dir, backend), startNginx(b, taskset, nginx, dir, backend)}
	creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS13})
	return ps, creds
}

func startTlsgate(b *testing.B, taskset, dir, backend string) *proxy {
	bin := filepath.Join(dir, "tlsgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tlsgate")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	addr := porttest.Hold(b)
	cfg := fmt.Sprintf(`watch_interval: -1s
certificates:
  - {id: site, cert: server.crt, key: server.key}
  - {id: clients, ca: ca.crt}
target_groups:
  - {id: backend, protocol: h2c, targets: [{address: %s}]}
listeners:
  - {id: bench, protocol: https, listen: %s, target_group: backend, forward_client_cert: none,
     ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients, min_version: "1.3"}}
`, backend, addr)
	pkitest.Write(b, dir, "tlsgate.yaml", []byte(cfg))
	return start(b, "tlsgate", addr, taskset, "-c", "0", bin, "serve", "--config", filepath.Join(dir, "tlsgate.yaml"), "--log-file", filepath.Join(dir, "tlsgate.log"))
}

// startNginx runs nginx (a master and one worker) with its error log on stderr, which
// the start keeps for failure messages.
func startNginx(tb testing.TB, taskset, nginx, dir, backend string) *proxy {
	addr := porttest.Hold(tb)
	cfg := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log %[1]s/nginx-access.log;
  client_body_temp_path %[1]s;
  upstream backend { server %[2]s; keepalive 16; }
  server {
    listen %[3]s ssl http2;
    ssl_certificate %[1]s/server.crt;
    ssl_certificate_key %[1]s/server.key;
    ssl_client_certificate %[1]s/ca.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.3;
    location / { grpc_pass grpc://backend; }
  }
}
`, dir, backend, addr)
	conf := pkitest.Write(tb, dir, "nginx.conf", []byte(cfg))
	return start(tb, "nginx", addr, taskset, "-c", "0", nginx, "-p", dir, "-e", "stderr", "-c", conf)
}

// start runs argv (taskset, which execs the proxy in its place), keeping the end of its
// output, and waits until addr accepts; a proxy that exits first fails at once with its
// exit status and output.
func start(tb testing.TB, name, addr string, argv ...string) *proxy {
	tb.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	p := proxytest.StartProcess(tb, cmd)
	// Runs before StartProcess's kill: SIGINT stops nginx's worker through its master
	// (a kill of the master would leave the worker running) and drains tlsgate.
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
		}
	})
	p.WaitAccepting(tb, addr)
	return &proxy{name: name, addr: addr, cmd: cmd, proc: p}
}

// BenchmarkGRPC: unary calls (32 in flight) and 1 MiB server streams (4 in flight, 16
// messages of 64 KiB each) over one client connection per proxy. calls/cpu-s and
// MiB/cpu-s are per second of the proxy's CPU.
func BenchmarkGRPC(b *testing.B) {
	ps, creds := setup(b)
	for _, p := range ps {
		cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			b.Fatal(err)
		}
		c := testpb.NewTestServiceClient(cc)
		if _, err := c.UnaryCall(b.Context(), &testpb.SimpleRequest{}); err != nil {
			b.Fatal(p.failed(err))
		}
		b.Run(p.name+"/unary", func(b *testing.B) {
			run(b, p, 32, "calls", 1, func() error {
				_, err := c.UnaryCall(context.Background(), &testpb.SimpleRequest{ResponseSize: 100, Payload: &testpb.Payload{Body: make([]byte, 100)}})
				return err
			})
		})
		params := make([]*testpb.ResponseParameters, 16)
		for i := range params {
			params[i] = &testpb.ResponseParameters{Size: 64 << 10}
		}
		b.Run(p.name+"/stream_1MiB", func(b *testing.B) {
			run(b, p, 4, "MiB", 1, func() error { // 16 × 64 KiB: 1 MiB a call
				st, err := c.StreamingOutputCall(context.Background(), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
				if err != nil {
					return err
				}
				for range params {
					if _, err := st.Recv(); err != nil {
						return err
					}
				}
				return nil
			})
		})
		cc.Close()
	}
}

// run makes b.N calls of do, conc at a time, and reports unit (per call) per second
// of wall time and per second of the proxy's CPU.
func run(b *testing.B, p *proxy, conc int, unit string, per float64, do func() error) {
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	cpu0, start := p.cpu(b), time.Now()
	b.ResetTimer()
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for range work {
				if err := do(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	wall, cpu := time.Since(start), p.cpu(b)-cpu0
	close(errs)
	for err := range errs {
		b.Fatal(p.failed(err))
	}
	total := float64(b.N) * per
	b.ReportMetric(total/wall.Seconds(), unit+"/s")
	if cpu > 0 {
		b.ReportMetric(total/cpu.Seconds(), unit+"/cpu-s")
	}
}

// TestStartNginxFailsWithItsOutput: an nginx that refuses its config fails the start at
// once, with nginx's complaint (its error log is on stderr, which the start keeps).
func TestStartNginxFailsWithItsOutput(t *testing.T) {
	t.Parallel()
	nginx, taskset := tooltest.Path(t, "nginx"), tooltest.Path(t, "taskset")
	dir := t.TempDir()
	msg := proxytest.CatchFatal(t, func(tb testing.TB) { startNginx(tb, taskset, nginx, dir, "127.0.0.1:notaport") })
	for _, want := range []string{"nothing accepts on 127.0.0.1:", "exited (exit status 1)", `invalid port in upstream "127.0.0.1:notaport"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
}
