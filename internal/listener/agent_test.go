package listener

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"tlsgate/internal/backend"
	"tlsgate/internal/config"
	"tlsgate/internal/metrics"
)

// lockedBuffer is a log's output, written by the listener's workers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// TestAccessUserAgent: a request's line has the client's User-Agent, taken when the
// line is written, under the log.access policy current then: a reload while the backend
// answers may turn logging on or off for the request in flight. A request to an HTTP/2
// group keeps the User-Agent its client sent although the HTTP/2 proxy strips the
// request's header in place (here because the client's Connection names it).
func TestAccessUserAgent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		h2c            bool
		conn           string // the request's Connection
		before, during Access // the policy when the request comes, and a reload's while the backend answers
		line           bool
	}{
		{name: "all", line: true},
		{name: "off, then all", before: Access{Off: true}, line: true},
		{name: "all, then off", during: Access{Off: true}},
		{name: "errors only", before: Access{Skip: 1}, during: Access{Skip: 1}},
		{name: "h2c", h2c: true, line: true},
		{name: "h2c, named in Connection", h2c: true, conn: "User-Agent", line: true},
		{name: "h2c, named in Connection, off then all", h2c: true, conn: "User-Agent", before: Access{Off: true}, line: true},
		{name: "http1, named in Connection", conn: "User-Agent", line: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				l       *Listener
				state   func(Access) *State
				sawUA   = make(chan string, 1)
				logs    lockedBuffer
				version = config.UpstreamHTTP1
			)
			be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				l.Swap(state(tc.during))
				sawUA <- r.Header.Get("User-Agent")
				_, _ = w.Write([]byte("ok"))
			}))
			if tc.h2c {
				be.Config.Protocols = new(http.Protocols)
				be.Config.Protocols.SetUnencryptedHTTP2(true)
				version = config.UpstreamH2C
			}
			be.Start()
			defer be.Close()
			g, err := backend.NewGroup(&config.TargetGroup{ID: "g", Protocol: version,
				Targets: []config.Target{{Address: be.Listener.Addr().String()}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			dom := &Domain{Group: g}
			state = func(a Access) *State {
				return NewState(&State{ID: "ua", Protocol: config.ProtoHTTP, Default: dom, Access: a,
					HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, nil)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l = New(ln, state(tc.before), Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New()})
			served := make(chan error, 1)
			go func() { served <- l.Serve() }()
			var once sync.Once
			stop := func() { // waits for the connection's requests: their lines are written
				once.Do(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = l.Shutdown(ctx)
					<-served
				})
			}
			defer stop()

			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := "GET /x HTTP/1.1\r\nHost: ua.test\r\nUser-Agent: agent/1.0 (test)\r\n"
			if tc.conn != "" {
				req += "Connection: " + tc.conn + "\r\n"
			}
			if _, err := c.Write([]byte(req + "\r\n")); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ua := <-sawUA; (ua == "agent/1.0 (test)") != (tc.conn != "User-Agent") {
				t.Fatalf("the backend saw User-Agent %q (the client's Connection %q)", ua, tc.conn)
			}
			_ = c.Close()
			stop()
			lines := logLines(t, bytes.NewBuffer(logs.Bytes()))
			switch {
			case !tc.line && len(lines) != 0:
				t.Fatalf("lines %v, want none", lines)
			case tc.line && len(lines) != 1:
				t.Fatalf("lines %v, want one", lines)
			case tc.line && lines[0]["user_agent"] != "agent/1.0 (test)":
				t.Fatalf("the line's user_agent is %v, want the client's: %v", lines[0]["user_agent"], lines[0])
			}
		})
	}
}
