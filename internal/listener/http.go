package listener

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"tlsgate/internal/httpproxy"
)

var infos sync.Map // net.Conn → *connInfo, from handle to the http.Server's ConnContext

// serveHTTP hands a (handshaken) connection to the listener's http.Server.
func (l *Listener) serveHTTP(c net.Conn, info *connInfo) {
	infos.Store(c, info)
	if !l.conns.push(c) {
		infos.Delete(c)
		_ = c.Close()
		l.deps.Metrics.ConnectionsOpen.WithLabelValues(l.ID()).Dec()
	}
}

func (l *Listener) popInfo(c net.Conn) *connInfo {
	v, _ := infos.LoadAndDelete(c)
	info, _ := v.(*connInfo)
	if info == nil {
		info = &connInfo{client: c.RemoteAddr().String()}
	}
	return info
}

// ServeHTTP proxies one request to a target of the listener's current group.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := l.state.Load()
	info, _ := r.Context().Value(connKey{}).(*connInfo)
	line := Line{Msg: "request", Listener: st.ID, Client: info.client, Method: r.Method, Path: r.URL.Path}
	if info.cs != nil {
		line.setTLS(info.cs, info.verdict)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		line.Status, line.BytesOut, line.Duration = sw.status, sw.n, time.Since(start)
		if line.Status == 0 {
			line.Status = http.StatusOK
		}
		line.BytesIn = max(r.ContentLength, 0)
		line.Log(r.Context(), l.deps.Log)
		l.deps.Metrics.Requests.WithLabelValues(st.ID, strconv.Itoa(line.Status)).Inc()
		l.deps.Metrics.RequestSeconds.WithLabelValues(st.ID).Observe(line.Duration.Seconds())
	}()
	t, err := st.Group.Pick(info.client)
	if err != nil {
		line.Err = err
		http.Error(sw, "503 service unavailable: no healthy backend in target group "+st.Group.ID, http.StatusServiceUnavailable)
		return
	}
	line.Target = t.Address
	release := t.Acquire()
	defer release()
	route := &httpproxy.Route{
		Target:  t.Address,
		TLS:     info.cs,
		Verdict: info.verdict,
		Forward: st.Forward,
		Err:     func(err error) { line.Err = err },
	}
	l.proxy.ServeHTTP(sw, r.WithContext(httpproxy.WithRoute(r.Context(), route)))
}

// statusWriter records the status and body size; Unwrap keeps Flush and Hijack
// (WebSocket upgrades) working through http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// chanListener is a net.Listener fed by the accept loop after the handshake, so the
// http.Server never sees a connection whose handshake failed.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (c *chanListener) push(conn net.Conn) bool {
	select {
	case c.ch <- conn:
		return true
	case <-c.done:
		return false
	}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.closed.Do(func() { close(c.done) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.addr }

var _ net.Listener = (*chanListener)(nil)
