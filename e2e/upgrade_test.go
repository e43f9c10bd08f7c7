package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logStream reads a serve process's JSON log lines (standard error, shared by every
// process an upgrade starts) and lets the test wait for one.
type logStream struct {
	lines chan map[string]any
	done  chan struct{} // closed at EOF: every process writing to the pipe has exited
}

func newLogStream(t *testing.T, r io.Reader) *logStream {
	s := &logStream{lines: make(chan map[string]any, 4096), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"msg": "(not json)", "text": sc.Text()}
			}
			s.lines <- m
		}
	}()
	return s
}

// next waits (up to 60 s) for a line with every key/value of want; the lines skipped
// are passed to seen.
func (s *logStream) next(t *testing.T, want map[string]any, seen func(map[string]any)) map[string]any {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m := <-s.lines:
			ok := true
			for k, v := range want {
				ok = ok && fmt.Sprint(m[k]) == fmt.Sprint(v)
			}
			if ok {
				return m
			}
			if seen != nil {
				seen(m)
			}
		case <-timeout:
			t.Fatalf("no log line with %v", want)
		}
	}
}

// notifySocket is a real unixgram NOTIFY_SOCKET collecting what tlsgate tells systemd.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func newNotifySocket(t *testing.T) *notifySocket {
	n := &notifySocket{path: filepath.Join(t.TempDir(), "notify")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

// wait waits (up to 30 s) until n messages starting with prefix arrived.
func (n *notifySocket) wait(t *testing.T, prefix string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.count(prefix) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d notify messages %s…, want %d", n.count(prefix), prefix, want)
		}
		time.Sleep(10 * time.Millisecond) // datagrams from another process
	}
}

func (n *notifySocket) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		if strings.HasPrefix(m, prefix) {
			c++
		}
	}
	return c
}

// progress is signalled after every request or echo, for the waits on the load.
var progress = make(chan struct{}, 1)

// load counts the outcomes of one kind of client traffic.
type load struct {
	name              string
	ok, failed, refus atomic.Int64
	mu                sync.Mutex
	errs              []string
}

func (l *load) record(err error) {
	defer func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}()
	switch {
	case err == nil:
		l.ok.Add(1)
	case errors.Is(err, syscall.ECONNREFUSED):
		l.refus.Add(1)
		l.failed.Add(1)
	default:
		l.failed.Add(1)
	}
	if err != nil {
		l.mu.Lock()
		if len(l.errs) < 5 {
			l.errs = append(l.errs, err.Error())
		}
		l.mu.Unlock()
	}
}

// startServe copies the binary into dir (so an upgrade can replace it there), starts
// `serve` on the demo's config with NOTIFY_SOCKET set, and returns its log stream, pid
// and the address of each listener.
func startServe(t *testing.T, dir string, notify *notifySocket) (string, *exec.Cmd, *logStream, int, map[string]string) {
	t.Helper()
	exe := filepath.Join(dir, "bin", "tlsgate")
	installBinary(t, exe)
	srv := exec.Command(exe, "serve", "--config", filepath.Join(dir, "tlsgate.yaml"), "--log-access", "errors")
	srv.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=200000") // pings every 100 ms
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	logs := newLogStream(t, stderr)
	addrs := map[string]string{}
	serving := logs.next(t, map[string]any{"msg": "serving"}, func(m map[string]any) {
		if m["msg"] == "listening" {
			addrs[fmt.Sprint(m["listener"])] = fmt.Sprint(m["address"])
		}
	})
	return exe, srv, logs, int(serving["pid"].(float64)), addrs
}

// installBinary puts a copy of the built binary at path by rename, as a package manager
// replaces it under a running process.
func installBinary(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".new", b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// demoDir runs `tlsgate demo` for its PKI, config and echo backends.
func demoDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	demo := exec.Command(bin, "demo", "--dir", dir)
	demo.Stderr = io.Discard
	lines := startLines(t, demo)
	waitLine(t, lines, regexp.MustCompile(`Press Ctrl-C`))
	t.Cleanup(func() {
		_ = demo.Process.Signal(syscall.SIGTERM)
		for range lines {
		}
		_ = demo.Wait()
	})
	return dir
}

// TestUpgradeUnderLoad: 20 binary upgrades (SIGUSR2, the binary on disk replaced
// before each) under keep-alive and new-connection load on a mutual HTTPS and a mutual
// TCP SSL listener: no request fails, no connection is refused; systemd is told READY
// once, the new MAINPID at each upgrade and STOPPING at the end; every old process exits.
func TestUpgradeUnderLoad(t *testing.T) {
	const upgrades = 20
	dir := demoDir(t)
	notify := newNotifySocket(t)
	exe, srv, logs, pid, addrs := startServe(t, dir, notify)
	ca := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	ca.AppendCertsFromPEM(caPEM)
	alice, err := tls.LoadX509KeyPair(filepath.Join(dir, "alice.crt"), filepath.Join(dir, "alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: ca, ServerName: "localhost", Certificates: []tls.Certificate{alice}}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	loads := map[string]*load{}
	run := func(name string, workers int, once func() error) {
		l := &load{name: name}
		loads[name] = l
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					l.record(once())
				}
			})
		}
	}
	httpsURL := "https://" + addrs["https-mutual"] + "/hello"
	get := func(c *http.Client) error {
		resp, err := c.Get(httpsURL)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	client := func(keepAlive, h2 bool) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: tlsCfg.Clone(), DisableKeepAlives: !keepAlive, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 4,
		}}
	}
	h1ka, h2ka, fresh, fresh2 := client(true, false), client(true, true), client(false, false), client(false, true)
	run("https keep-alive HTTP/1.1", 3, func() error { return get(h1ka) })
	run("https keep-alive HTTP/2", 2, func() error { return get(h2ka) })
	run("https new connection", 2, func() error { return get(fresh) })
	run("https new connection HTTP/2", 2, func() error { return get(fresh2) })
	echo := func(c net.Conn, br *bufio.Reader) error {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if err == nil && line != "ping\n" {
			err = fmt.Errorf("echo %q", line)
		}
		return err
	}
	dialTCP := func() (net.Conn, error) {
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addrs["tcpssl-mutual"], tlsCfg)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		return c, nil
	}
	run("tcp_ssl new connection", 2, func() error {
		c, err := dialTCP()
		if err != nil {
			return err
		}
		defer c.Close()
		return echo(c, bufio.NewReader(c))
	})
	// Keep-alive relays: 20 echoes on one connection, then the next connection. (A
	// relay open past the drain timeout, 30 s, would be cut as on SIGTERM.)
	tcpKA := &load{name: "tcp_ssl keep-alive (echoes)"}
	loads[tcpKA.name] = tcpKA
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := dialTCP()
				if err != nil {
					tcpKA.record(err)
					continue
				}
				br := bufio.NewReader(c)
				for i := 0; i < 20 && ctx.Err() == nil; i++ {
					err := echo(c, br)
					tcpKA.record(err)
					if err != nil {
						break
					}
				}
				c.Close()
			}
		})
	}
	total := func() int64 {
		var n int64
		for _, l := range loads {
			n += l.ok.Load() + l.failed.Load()
		}
		return n
	}
	var unexpected []string
	exits := 0
	watch := func(m map[string]any) {
		if m["msg"] == "exiting" {
			exits++
		}
		if m["level"] == "ERROR" || m["msg"] == "(not json)" { // the config's lint warnings are expected
			unexpected = append(unexpected, fmt.Sprint(m))
		}
	}
	pids := []int{pid}
	for i := range upgrades {
		for before := total(); total() < before+200; { // load on the current process before each upgrade
			<-progress
		}
		installBinary(t, exe)
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		m := logs.next(t, map[string]any{"msg": "upgrade: the new process serves; draining this one", "pid": pid}, watch)
		pid = int(m["new_pid"].(float64))
		pids = append(pids, pid)
		t.Logf("upgrade %d: pid %d → %d, %d requests so far", i+1, pids[i], pid, total())
	}
	for before := total(); total() < before+200; {
		<-progress
	}
	// The last process pings the watchdog (the old ones stopped at their handover).
	notify.wait(t, "WATCHDOG=1", notify.count("WATCHDOG=1")+2)
	stop()
	wg.Wait()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-logs.lines:
			watch(m)
			continue
		case <-logs.done:
		case <-time.After(90 * time.Second):
			t.Fatal("serve processes still running 90 s after the last SIGTERM")
		}
		break
	}
	for len(logs.lines) > 0 {
		watch(<-logs.lines)
	}
	_ = srv.Wait()

	var requests, failed, refused int64
	for _, l := range loads {
		requests += l.ok.Load() + l.failed.Load()
		failed += l.failed.Load()
		refused += l.refus.Load()
		t.Logf("%-28s ok %6d  failed %d  refused %d  %v", l.name, l.ok.Load(), l.failed.Load(), l.refus.Load(), l.errs)
	}
	t.Logf("%d upgrades: %d requests/echoes, %d failed, %d refused; %d processes exited; notify: READY=1 %d, MAINPID= %d, STOPPING=1 %d, RELOADING=1 %d, WATCHDOG=1 %d",
		upgrades, requests, failed, refused, exits, notify.count("READY=1"), notify.count("MAINPID="), notify.count("STOPPING=1"), notify.count("RELOADING=1"), notify.count("WATCHDOG=1"))
	if failed != 0 || refused != 0 {
		t.Errorf("%d failed and %d refused of %d", failed, refused, requests)
	}
	if exits != upgrades+1 {
		t.Errorf("%d processes logged exiting, want %d", exits, upgrades+1)
	}
	if r, m, s := notify.count("READY=1"), notify.count("MAINPID="), notify.count("STOPPING=1"); r != 1 || m != upgrades || s != 1 {
		t.Errorf("notify: READY=1 %d (want 1), MAINPID= %d (want %d), STOPPING=1 %d (want 1)", r, m, upgrades, s)
	}
	if len(unexpected) > 0 {
		t.Errorf("errors logged:\n%s", strings.Join(unexpected, "\n"))
	}
}

// TestUpgradeFailedChild: a new process that cannot start (the config on disk is now
// broken) leaves the old one serving, with the failure logged; a later upgrade with the
// config fixed succeeds, and the admin API on a unix socket is the new process's.
func TestUpgradeFailedChild(t *testing.T) {
	dir := demoDir(t)
	cfg := filepath.Join(dir, "tlsgate.yaml")
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	good = []byte(strings.Replace(string(good), "admin:\n  listen: 127.0.0.1:0", "admin:\n  listen: unix:"+sock, 1))
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	notify := newNotifySocket(t)
	_, srv, logs, pid, addrs := startServe(t, dir, notify)
	admin := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	healthz := func(when string) {
		t.Helper()
		resp, err := admin.Get("http://admin/healthz")
		if err != nil {
			t.Fatalf("admin socket %s: %v", when, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin socket %s: %s", when, resp.Status)
		}
	}
	healthz("at start")
	if err := os.WriteFile(cfg, append(good, "oops: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	logs.next(t, map[string]any{"msg": "upgrade failed; this process keeps serving", "level": "ERROR"}, nil)
	ca := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	ca.AppendCertsFromPEM(caPEM)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca, ServerName: "localhost"}}}
	resp, err := c.Get("https://" + addrs["https-one-way"] + "/hello")
	if err != nil {
		t.Fatalf("the old process stopped serving after a failed upgrade: %v", err)
	}
	resp.Body.Close()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the old process is gone: %v", err)
	}
	// A SIGHUP reload (failing, the config is still broken) is announced to systemd.
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	notify.wait(t, "RELOADING=1", 1)
	notify.wait(t, "READY=1", 2) // at start, and after the reload
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m := logs.next(t, map[string]any{"msg": "upgrade: the new process serves; draining this one", "pid": pid}, nil)
	newPID := int(m["new_pid"].(float64))
	resp, err = c.Get("https://" + addrs["https-one-way"] + "/hello")
	if err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	resp.Body.Close()
	// The old process has exited; its unix socket file must still be the new one's.
	logs.next(t, map[string]any{"msg": "exiting", "pid": pid}, nil)
	admin.CloseIdleConnections()
	healthz("after the old process exited")
	_ = syscall.Kill(newPID, syscall.SIGTERM)
	<-logs.done
	_ = srv.Wait()
	notify.wait(t, "STOPPING=1", 1)
	if notify.count("MAINPID=") != 1 {
		t.Errorf("MAINPID= sent %d times, want 1 (the failed upgrade must not hand over)", notify.count("MAINPID="))
	}
	notify.mu.Lock()
	t.Logf("notify messages: %q", notify.msgs)
	notify.mu.Unlock()
}
