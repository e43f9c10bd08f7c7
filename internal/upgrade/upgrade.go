// Package upgrade replaces the running tlsgate binary without dropping a connection, as
// nginx's USR2, HAProxy's -x and Envoy's hot restart do. The old process starts the
// binary on disk with its listening sockets inherited (passed as extra file descriptors,
// named in an environment variable, like systemd's LISTEN_FDS); the new process opens
// its listeners on them instead of binding again, and says when it serves through a
// pipe. Only then does the old process stop accepting and drain. A new process that
// fails first (a bad config, a crash, no answer in time) is logged by the old one, which
// keeps serving. The kernel queues connections on the shared socket meanwhile, so none
// is refused.
//
// It owns the process handoff only: the server opens sockets through Sockets.Listen,
// and the cli decides when to upgrade (SIGUSR2) and what to tell systemd.
package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"tlsgate/internal/listensock"
)

const (
	// EnvFDs names the inherited listening sockets: "ADDR;ADDR;…", the i-th being file
	// descriptor 3+i. ADDR is the listen address as configured, so the new process's
	// listener with that address gets it; several on one address (port 0) go in order.
	EnvFDs = "TLSGATE_UPGRADE_FDS"
	// EnvReady is the file descriptor of the pipe on which the new process writes
	// "ready" once it serves.
	EnvReady = "TLSGATE_UPGRADE_READY"
	// ReadyTimeout bounds the wait for a new process to be ready; then it is killed.
	ReadyTimeout = time.Minute
)

// Sockets are the listening sockets of this process, opened or inherited, to pass on at
// the next upgrade.
type Sockets struct {
	mu        sync.Mutex
	open      []*socket                 // in the order they were opened
	inherited map[string][]net.Listener // by configured address, not yet claimed
	ready     *os.File                  // the pipe to the old process; nil unless upgrading
}

// socket is a listening socket with the address it was asked for.
type socket struct {
	net.Listener
	addr string
	s    *Sockets
	once sync.Once
}

// Close closes the socket and forgets it: a listener a reload removed is not passed on.
func (k *socket) Close() error {
	k.once.Do(func() { k.s.forget(k) })
	return k.Listener.Close()
}

func (s *Sockets) forget(k *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.open {
		if o == k {
			s.open = append(s.open[:i], s.open[i+1:]...)
			return
		}
	}
}

// Inherit reads the sockets and the ready pipe an upgrading parent passed in the
// environment; without them it returns empty Sockets. The variables are unset, so a
// later upgrade of this process does not see them.
func Inherit() (*Sockets, error) {
	s := &Sockets{inherited: map[string][]net.Listener{}}
	fds, ready := os.Getenv(EnvFDs), os.Getenv(EnvReady)
	_ = os.Unsetenv(EnvFDs)
	_ = os.Unsetenv(EnvReady)
	if ready != "" {
		fd, err := strconv.Atoi(ready)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s=%q: not a file descriptor", EnvReady, ready)
		}
		s.ready = os.NewFile(uintptr(fd), "upgrade-ready")
	}
	if fds == "" {
		return s, nil
	}
	for i, addr := range strings.Split(fds, ";") {
		f := os.NewFile(uintptr(3+i), addr)
		ln, err := net.FileListener(f)
		_ = f.Close() // FileListener made its own copy
		if err != nil {
			s.CloseUnused()
			return nil, fmt.Errorf("inherited socket %d (%s): %w", 3+i, addr, err)
		}
		s.inherited[addr] = append(s.inherited[addr], ln)
	}
	return s, nil
}

// Upgrading reports whether this process was started by an upgrade.
func (s *Sockets) Upgrading() bool { return s.ready != nil }

// Listen returns the inherited socket for addr when there is one, else a new one
// (listensock.Listen: on Linux the client sockets' keep-alive is set once on it). It is
// the server's Options.Listen. An inherited socket keeps Go's per-connection keep-alive
// (net.FileListener's zero ListenConfig), with the same values.
func (s *Sockets) Listen(network, addr string) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ln net.Listener
	if q := s.inherited[addr]; len(q) > 0 && q[0].Addr().Network() == network {
		ln, s.inherited[addr] = q[0], q[1:]
	} else {
		var err error
		if ln, err = listensock.Listen(network, addr); err != nil {
			return nil, err
		}
	}
	k := &socket{Listener: ln, addr: addr, s: s}
	s.open = append(s.open, k)
	return k, nil
}

// CloseUnused closes the inherited sockets no listener claimed (the new config dropped
// their addresses).
func (s *Sockets) CloseUnused() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, q := range s.inherited {
		for _, ln := range q {
			_ = ln.Close()
		}
		delete(s.inherited, addr)
	}
}

// Ready tells the old process that this one serves, so it may stop accepting. Call it
// once every listener is open; it does nothing unless upgrading.
func (s *Sockets) Ready() error {
	if s.ready == nil {
		return nil
	}
	_, err := s.ready.WriteString("ready\n")
	_ = s.ready.Close()
	s.ready = nil
	if err != nil {
		return fmt.Errorf("telling the old process: %w", err)
	}
	return nil
}

// files dups the open sockets for a child, with the EnvFDs value naming them.
func (s *Sockets) files() ([]*os.File, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files []*os.File
	var addrs []string
	for _, k := range s.open {
		fl, ok := k.Listener.(interface{ File() (*os.File, error) })
		if !ok {
			continue
		}
		f, err := fl.File()
		if err != nil {
			closeAll(files)
			return nil, "", fmt.Errorf("passing socket %s: %w", k.Addr(), err)
		}
		files, addrs = append(files, f), append(addrs, k.addr)
	}
	return files, strings.Join(addrs, ";"), nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// Child is a new process that reported ready.
type Child struct {
	PID  int
	done chan error // its exit, once it ends
}

// Start runs exe with args and env (plus the upgrade variables), its standard output
// and error on stdout and stderr, and the open sockets inherited. It returns once the
// new process reported ready; when it exits first, does not answer within ReadyTimeout,
// or ctx ends, it is killed (if still running) and the error says why: the caller keeps
// serving.
func (s *Sockets) Start(ctx context.Context, exe string, args, env []string, stdout, stderr *os.File) (*Child, error) {
	files, fds, err := s.files()
	if err != nil {
		return nil, err
	}
	defer closeAll(files)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making the ready pipe: %w", err)
	}
	defer pr.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = append(files, pw)
	cmd.Env = append(childEnv(env), EnvFDs+"="+fds, EnvReady+"="+strconv.Itoa(3+len(files)))
	err = cmd.Start()
	_ = pw.Close() // the child has it; EOF on pr now means the child is gone
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", exe, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	readied := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		readied <- line == "ready\n"
	}()
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	fail := func(why error) (*Child, error) {
		_ = cmd.Process.Kill()
		<-done
		return nil, why
	}
	select {
	case ok := <-readied:
		if ok {
			s.keepUnixPaths()
			return &Child{PID: cmd.Process.Pid, done: done}, nil
		}
		err := <-done // closed the pipe without a word: it is exiting
		return nil, fmt.Errorf("new process %d exited before it was ready: %w", cmd.Process.Pid, exitErr(err))
	case <-timer.C:
		return fail(fmt.Errorf("new process %d was not ready within %s; killed", cmd.Process.Pid, ReadyTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("upgrade cancelled: %w", ctx.Err()))
	}
}

// keepUnixPaths stops this process's unix sockets from removing their files when it
// closes them at the end of its drain: the new process listens on the same files.
func (s *Sockets) keepUnixPaths() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.open {
		if u, ok := k.Listener.(*net.UnixListener); ok {
			u.SetUnlinkOnClose(false)
		}
	}
}

// childEnv is env without WATCHDOG_PID (it names this process, so the new one would not
// ping systemd's watchdog once it is the main process) and without earlier upgrade
// variables.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "WATCHDOG_PID" && k != EnvFDs && k != EnvReady {
			out = append(out, kv)
		}
	}
	return out
}

func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}
