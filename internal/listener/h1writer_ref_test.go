package listener

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tlsgate/internal/httpproxy"
)

// refWriteHeader is WriteHeader as it was before appendFinalFields (cb89786): each
// framing field looked up in the header, a missing Date added to it, the fields written
// by writeFields.
func refWriteHeader(w *h1writer, code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeStatus(code)
		w.writeFields()
		_, _ = w.bw.WriteString("\r\n")
		_ = w.bw.Flush()
		return
	}
	w.wroteHeader, w.status = true, code
	h, r := w.header, w.req
	w.closeAfter = w.closeAfter || r.Close || httpproxy.Listed(h["Connection"], "close")
	w.noBody = r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	delete(h, "Transfer-Encoding")
	if cl := h["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 && len(cl) == 1 {
			if !w.noBody {
				w.remain = n
			}
		} else {
			delete(h, "Content-Length")
		}
	}
	if !w.noBody && w.remain < 0 {
		if r.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.closeAfter = true
		}
	}
	if w.h.state.Load() == h1Closing {
		w.closeAfter = true
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{dateNow()}
	}
	w.writeStatus(code)
	w.writeFields()
	if w.chunked {
		_, _ = w.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.closeAfter {
		if len(h["Connection"]) == 0 {
			_, _ = w.bw.WriteString("Connection: close\r\n")
		}
	} else if !r.ProtoAtLeast(1, 1) {
		_, _ = w.bw.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = w.bw.WriteString("\r\n")
}

// TestWriteHeaderMatchesReference: a response written with WriteHeader, a body and
// finish is the one the old WriteHeader wrote (refWriteHeader), up to the order of the
// header's fields and the second of a Date added: the same status line, fields, framing
// lines and body bytes, the same framing state, the same header left (but the Date the
// old one added to it). Headers with framing fields valid, invalid, repeated, empty and
// in other spellings, trailers, invalid names and values; 1xx and final codes, HEAD,
// HTTP/1.0, a client's close, a draining connection; writers of 16-4096 bytes.
func TestWriteHeaderMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 29))
	fields := map[string][]string{
		"Content-Length":      {"0", "5", "12", "-1", "+5", "abc", "", " 5", "99999999999999999999", "1\r\n"},
		"Transfer-Encoding":   {"chunked", "gzip, chunked", ""},
		"Connection":          {"close", "keep-alive", "Upgrade, close", "", "foo", "CLOSE"},
		"Date":                {"Sun, 06 Nov 1994 08:49:37 GMT", "", "x\r\ny"},
		"Content-Type":        {"text/plain", "a\r\nInjected: 1"},
		"X-Request-Id":        {"6f1c0e4b9a2d4c7e"},
		"Set-Cookie":          {"a=b", "c=d; Path=/"},
		"Trailer":             {"Grpc-Status"},
		"Trailer:Grpc-Status": {"0", "14"},
		"Bad Name":            {"v"},
		"connection":          {"close"},
		"content-length":      {"7"},
		"transfer-encoding":   {"chunked"},
		"date":                {"today"},
		"X-Long":              {strings.Repeat("v", 300)},
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	codes := []int{200, 200, 200, 201, 204, 304, 404, 500, 599, 101, 100, 103, 199, 600, 0, 42}
	for i := range 50000 {
		h := http.Header{}
		for range rng.IntN(9) {
			k := names[rng.IntN(len(names))]
			if rng.IntN(12) == 0 {
				h[k] = append(h[k], []string{}...) // present, no value
				if h[k] == nil {
					h[k] = []string{}
				}
				continue
			}
			vs := fields[k]
			h[k] = append(h[k], vs[rng.IntN(len(vs))])
		}
		r, _ := http.NewRequest([]string{"GET", "GET", "HEAD", "POST"}[rng.IntN(4)], "/", nil)
		if rng.IntN(4) == 0 {
			r.Proto, r.ProtoMinor = "HTTP/1.0", 0
		}
		r.Close = rng.IntN(6) == 0
		closing, closeAfter := rng.IntN(8) == 0, rng.IntN(8) == 0
		codes := []int{codes[rng.IntN(len(codes))], 200}[:1+rng.IntN(2)]
		body := strings.Repeat("b", []int{0, 0, 5, 12, 40}[rng.IntN(5)])
		size := []int{16, 64, 256, 4096}[rng.IntN(4)]
		pre := strings.Repeat("p", rng.IntN(20)) // a writer partly filled

		run := func(writeHeader func(*h1writer, int)) (string, *h1writer) {
			var out bytes.Buffer
			hc := &h1conn{}
			if closing {
				hc.state.Store(h1Closing)
			}
			w := &h1writer{}
			w.h1resp = h1resp{h: hc, bw: bufio.NewWriterSize(&out, size), req: r, header: h.Clone(), remain: -1, closeAfter: closeAfter}
			_, _ = w.bw.WriteString(pre)
			for _, c := range codes {
				writeHeader(w, c)
			}
			if !w.wroteHeader {
				writeHeader(w, http.StatusOK)
			}
			_, _ = w.Write([]byte(body))
			w.finish()
			_ = w.bw.Flush()
			s, ok := strings.CutPrefix(out.String(), pre)
			if !ok {
				t.Fatalf("%d: %q does not begin with what the writer held", i, out.String())
			}
			return s, w
		}
		gotOut, got := run((*h1writer).WriteHeader)
		wantOut, want := run(refWriteHeader)
		if _, ok := h["Date"]; !ok {
			delete(want.header, "Date") // the old writer's Date, in the header
		}
		gs, ws := state(got), state(want)
		if gs != ws || !sameHead(gotOut, wantOut, h) || !equalHeaders(got.header, want.header) {
			t.Fatalf("%d: %v %s close %v closing %v after %v, codes %v, header %q:\nwrote %q\nstate %s header %q\nwant  %q\nstate %s header %q",
				i, r.Method, r.Proto, r.Close, closing, closeAfter, codes, h, gotOut, gs, got.header, wantOut, ws, want.header)
		}
	}
}

// state is what WriteHeader decided of a response.
func state(w *h1writer) string {
	return strconv.Quote(strings.Join([]string{strconv.Itoa(w.status), strconv.FormatBool(w.wroteHeader),
		strconv.FormatBool(w.noBody), strconv.FormatBool(w.chunked), strconv.FormatInt(w.remain, 10),
		strconv.FormatBool(w.closeAfter), strconv.FormatBool(w.failed)}, " "))
}

// sameHead reports whether two outputs are the same up to the order of each head's
// fields and the value of a Date the writer added (h is the handler's header): each
// head's lines as a set, the rest byte for byte.
func sameHead(got, want string, h http.Header) bool {
	gl, gr := heads(got)
	wl, wr := heads(want)
	if gr != wr || len(gl) != len(wl) || len(gl) == 0 {
		return false
	}
	_, hasDate := h["Date"]
	for i := range gl {
		g, w := gl[i], wl[i]
		if len(g) == 0 || len(w) == 0 || g[0] != w[0] {
			return false
		}
		g, w = slices.Clone(g[1:]), slices.Clone(w[1:])
		if !hasDate && i == len(gl)-1 { // the final head
			g, w = withoutDate(g), withoutDate(w)
			if g == nil || w == nil {
				return false
			}
		}
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			return false
		}
	}
	return true
}

// heads splits an output into its heads (1xx and final: each its status line, then
// its fields) and what follows the final one.
func heads(out string) (hs [][]string, rest string) {
	for {
		before, after, ok := strings.Cut(out, "\r\n\r\n")
		if !ok {
			return hs, out
		}
		lines := strings.Split(before, "\r\n")
		hs, out = append(hs, lines), after
		if !strings.HasPrefix(lines[0], "HTTP/1.1 1") || strings.HasPrefix(lines[0], "HTTP/1.1 101 ") {
			return hs, out
		}
	}
}

// withoutDate removes the one Date line that is now's; nil when there is not one.
func withoutDate(lines []string) []string {
	out := []string{}
	n := 0
	for _, l := range lines {
		if d, ok := strings.CutPrefix(l, "Date: "); ok {
			if _, err := http.ParseTime(d); err == nil {
				n++
				continue
			}
		}
		out = append(out, l)
	}
	if n != 1 {
		return nil
	}
	return out
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// BenchmarkWriteHeader: the head of the benchmark backend's response as the proxy
// hands it to the writer (Content-Type, Content-Length, X-Request-Id, no Date), written
// by WriteHeader (new) and by the old one (ref; its loop also deletes the Date it added
// to the header, as the header's clear did after each response).
func BenchmarkWriteHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		wh   func(*h1writer, int)
	}{{"new", (*h1writer).WriteHeader}, {"ref", func(w *h1writer, code int) {
		refWriteHeader(w, code)
		delete(w.header, "Date")
	}}} {
		b.Run(bc.name, func(b *testing.B) {
			r, _ := http.NewRequest(http.MethodGet, "/1k", nil)
			hc, bw := &h1conn{}, bufio.NewWriterSize(discard{}, h1Buf)
			w := &h1writer{}
			h := make(http.Header, reuseFields)
			h[HeaderRequestID] = []string{"6f1c0e4b9a2d4c7e8f0a1b2c3d4e5f60"}
			h["Content-Type"] = []string{"application/octet-stream"}
			h["Content-Length"] = []string{"1024"}
			for b.Loop() {
				bw.Reset(discard{})
				w.h1resp = h1resp{h: hc, bw: bw, req: r, header: h, remain: -1}
				bc.wh(w, http.StatusOK)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
