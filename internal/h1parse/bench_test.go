package h1parse

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

var (
	benchRequests = map[string]string{
		"loadgen": "GET /1k HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: lbbench-loadgen\r\n\r\n",
		"browser": "GET /static/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0\r\n" +
			"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://www.example.com/\r\n" +
			"Cookie: session=abc123; theme=dark\r\nSec-Fetch-Dest: script\r\nSec-Fetch-Mode: no-cors\r\n\r\n",
	}
	benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024)
)

// BenchmarkReadRequest compares the fast path with http.ReadRequest on the same heads.
func BenchmarkReadRequest(b *testing.B) {
	for name, in := range benchRequests {
		for _, p := range []struct {
			name string
			read func(*bufio.Reader) (*http.Request, error)
		}{{"fast", ReadRequest}, {"nethttp", http.ReadRequest}} {
			b.Run(name+"/"+p.name, func(b *testing.B) {
				rd := bytes.NewReader([]byte(in))
				br := bufio.NewReader(rd)
				b.ReportAllocs()
				for b.Loop() {
					rd.Reset([]byte(in))
					br.Reset(rd)
					if _, err := p.read(br); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReadFast reads the same heads as the listener does: into a reused header map
// and a lent store, the request handed back after.
func BenchmarkReadFast(b *testing.B) {
	for name, in := range benchRequests {
		b.Run(name, func(b *testing.B) {
			data := []byte(in)
			rd := bytes.NewReader(data)
			br := bufio.NewReader(rd)
			h, store := http.Header{}, make([]byte, 1024)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(data)
				br.Reset(rd)
				clear(h)
				r, _, err := ReadFast(br, h, Limits{}, store)
				if err != nil || r == nil {
					b.Fatal("not taken", err)
				}
				Release(r)
			}
		})
	}
}

// BenchmarkReadResponseBlock reads the harness backend's response head as the proxy
// does: into a reused block, header map and head buffer (its body left unread).
func BenchmarkReadResponseBlock(b *testing.B) {
	req := &http.Request{Method: http.MethodGet}
	data := []byte(benchResponse)
	rd := bytes.NewReader(data)
	br := bufio.NewReader(rd)
	h, blk, store := http.Header{}, new(ResponseBlock), make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		br.Reset(rd)
		clear(h)
		if _, err := ReadResponseBlock(br, req, h, blk, store); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadResponse compares the fast path with http.ReadResponse on the harness
// backend's response, its 1 KiB body read.
func BenchmarkReadResponse(b *testing.B) {
	req := &http.Request{Method: http.MethodGet}
	for _, p := range []struct {
		name string
		read func(*bufio.Reader, *http.Request) (*http.Response, error)
	}{{"fast", ReadResponse}, {"nethttp", http.ReadResponse}} {
		b.Run(p.name, func(b *testing.B) {
			rd := bytes.NewReader([]byte(benchResponse))
			br := bufio.NewReader(rd)
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset([]byte(benchResponse))
				br.Reset(rd)
				resp, err := p.read(br, req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(resp.Body, buf[:1024]); err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
			}
		})
	}
}
