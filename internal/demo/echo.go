package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// EchoHTTP answers every request with a JSON object of the request line, headers and
// body size, so the caller sees exactly what tlsgate forwarded. An Upgrade request
// (WebSocket) is accepted with 101 and the connection then echoes bytes.
func EchoHTTP(w http.ResponseWriter, r *http.Request) {
	if up := r.Header.Get("Upgrade"); up != "" {
		echoUpgrade(w, up)
		return
	}
	n, _ := io.Copy(io.Discard, r.Body)
	hs := map[string]string{}
	for k, v := range r.Header {
		hs[k] = strings.Join(v, ", ")
	}
	keys := make([]string, 0, len(hs))
	for k := range hs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(struct {
		Method  string            `json:"method"`
		Host    string            `json:"host"`
		Path    string            `json:"path"`
		Proto   string            `json:"proto"`
		Headers map[string]string `json:"headers"`
		Body    int64             `json:"body_bytes"`
	}{r.Method, r.Host, r.URL.RequestURI(), r.Proto, hs, n})
}

func echoUpgrade(w http.ResponseWriter, proto string) {
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + proto + "\r\nConnection: Upgrade\r\n\r\n")
	if rw.Flush() != nil {
		return
	}
	_, _ = io.Copy(c, rw)
}

// Backend is a loopback HTTP echo server and a TCP echo server.
type Backend struct {
	HTTP, TCP net.Listener
	srv       *http.Server
	wg        sync.WaitGroup
}

// StartBackend starts both echo servers on free loopback ports.
func StartBackend() (*Backend, error) {
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hl.Close()
		return nil, err
	}
	b := &Backend{HTTP: hl, TCP: tl, srv: &http.Server{Handler: http.HandlerFunc(EchoHTTP), ReadHeaderTimeout: 10 * time.Second}}
	b.wg.Go(func() { _ = b.srv.Serve(hl) })
	b.wg.Go(func() { serveEcho(tl) })
	return b, nil
}

// serveEcho copies every connection back to itself and half-closes at EOF. When the
// listener closes, open connections are closed too and waited for.
func serveEcho(ln net.Listener) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	defer func() {
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				c.Close()
			}()
			_, _ = io.Copy(c, c)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		})
	}
}

// Close stops both servers.
func (b *Backend) Close() error {
	err := b.srv.Shutdown(context.Background())
	err = errors.Join(err, b.TCP.Close())
	b.wg.Wait()
	return err
}
