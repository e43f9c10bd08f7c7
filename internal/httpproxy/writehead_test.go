package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refWriteHead is writeHead as it was before its names were classified in one step and
// its head appended in one piece (main at 9ad1514): the reference the differential
// tests hold writeHead to. Its checks are the byte loops of valid_test.go.
func refWriteHead(bw *bufio.Writer, r *http.Request, route *Route, chunked bool) error {
	uri := r.RequestURI
	if uri == "" || (uri[0] != '/' && uri != "*") {
		uri = r.URL.RequestURI()
	}
	if !refToken(r.Method) || !validTarget(uri) || !refValue(r.Host) {
		return fmt.Errorf("%w: invalid method, target or host", errBadRequest)
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		if refIsHop(k) || refIsForwarded(k) || IsIdentityHeader(k) || (len(conn) > 0 && refListed(conn, k)) {
			continue
		}
		if !refToken(k) {
			return fmt.Errorf("%w: invalid header name %q", errBadRequest, k)
		}
		for _, v := range vs {
			if !refValue(v) {
				return fmt.Errorf("%w: invalid value in header %s", errBadRequest, k)
			}
			refWriteField(bw, k, v)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		refWriteField(bw, "X-Forwarded-For", host)
	}
	refWriteField(bw, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		refWriteField(bw, "X-Forwarded-Proto", "https")
	} else {
		refWriteField(bw, "X-Forwarded-Proto", "http")
	}
	for k, vs := range route.Identity {
		for _, v := range vs {
			refWriteField(bw, k, v)
		}
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

func refIsHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding",
		"Upgrade", "Content-Length", "Expect":
		return true
	}
	return false
}

// refIsForwarded is IsForwardedHeader written plainly: the name's ASCII letters
// lowered, underscores made dashes.
func refIsForwarded(k string) bool {
	k = strings.Map(func(r rune) rune {
		switch {
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		case r == '_':
			return '-'
		}
		return r
	}, k)
	switch k {
	case "forwarded", "x-real-ip", "true-client-ip":
		return true
	}
	return strings.HasPrefix(k, "x-forwarded-")
}

func refListed(connection []string, name string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

func refWriteField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// headRuns splits a written head into its request line with our Host line and its runs
// of lines of one name, sorted: the client's header and the identity headers are maps,
// written in their iteration order, and a name's values stay together and in order.
func headRuns(head string) (string, []string) {
	line, rest, _ := strings.Cut(head, "\r\n")
	host, rest, _ := strings.Cut(rest, "\r\n")
	line += "\r\n" + host
	var runs []string
	var name string
	for l := range strings.SplitSeq(rest, "\r\n") {
		n, _, _ := strings.Cut(l, ":")
		if len(runs) > 0 && n == name {
			runs[len(runs)-1] += l + "\r\n"
			continue
		}
		name = n
		runs = append(runs, l+"\r\n")
	}
	slices.Sort(runs)
	return line, runs
}

// headErrors is every error refWriteHead can give r: the header names are visited in
// the map's order, so with two bad fields either can be the one named.
func headErrors(r *http.Request, route *Route, chunked bool) []string {
	var out []string
	one := *r
	for k, vs := range r.Header {
		one.Header = http.Header{k: vs}
		if conn, ok := r.Header["Connection"]; ok {
			one.Header["Connection"] = conn
		}
		if err := refWriteHead(bufio.NewWriter(io.Discard), &one, route, chunked); err != nil {
			out = append(out, err.Error())
		}
	}
	if err := refWriteHead(bufio.NewWriter(io.Discard), r, route, chunked); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// sameHead writes r with writeHead and refWriteHead, through writers of size bufSize,
// and fails t when the heads (up to the map order) or the errors differ. It reports
// whether the request was written.
func sameHead(t *testing.T, r *http.Request, route *Route, chunked bool, bufSize int) bool {
	t.Helper()
	var got, want bytes.Buffer
	gw, ww := bufio.NewWriterSize(&got, bufSize), bufio.NewWriterSize(&want, bufSize)
	gerr := writeHead(gw, r, route, chunked)
	werr := refWriteHead(ww, r, route, chunked)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%s %q %q header %q: writeHead error %v, want %v", r.Method, r.RequestURI, r.Host, r.Header, gerr, werr)
	}
	if gerr != nil {
		if !errors.Is(gerr, errBadRequest) || !slices.Contains(headErrors(r, route, chunked), gerr.Error()) {
			t.Fatalf("header %q: writeHead error %q, want one of %q", r.Header, gerr, headErrors(r, route, chunked))
		}
		return false
	}
	gw.Flush()
	ww.Flush()
	gl, gr := headRuns(got.String())
	wl, wr := headRuns(want.String())
	if gl != wl || !slices.Equal(gr, wr) {
		t.Fatalf("header %q (RemoteAddr %q):\nwriteHead wrote %q\nwant           %q", r.Header, r.RemoteAddr, got.String(), want.String())
	}
	for _, run := range gr {
		name, _, _ := strings.Cut(run, ":")
		if IsIdentityHeader(name) && route.Identity[name] == nil {
			t.Fatalf("identity header %q from the client reached the backend", name)
		}
	}
	return true
}

// Names a generated request draws from: ours to drop in several cases and spellings,
// the identity prefixes in every form, ordinary names, and names a parser should never
// have let through.
var genNames = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Expect",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Real-Ip", "True-Client-Ip", "x-real-ip",
	"connection", "CONNECTION", "TE", "te", "transfer-encoding", "Transfer_Encoding", "content-length",
	"x-forwarded-for", "X_Forwarded_For", "X-Forwarded-For ", " X-Forwarded-For",
	"X-Client-Verify", "x-client-verify", "X_CLIENT_CERT", "X-Client-", "X-Client", "X-Clientx",
	"X-Forwarded-Client-Cert", "x_forwarded_client_cert", "X-Forwarded-Client-Certx", "X-Forwarded-Client-Cer",
	"X-Forwarded-Tls-Client-Cert", "X-Forwarded-TLS-Client-Cert-Info", "X-Ssl-Client-Verify", "x_ssl_client",
	"X-Ssl-Cert", "X-SSL-CERT-CHAIN", "Ssl-Client-Cert", "ssl_client", "Ssl-Clien", "Client-Cert",
	"client_cert_chain", "Client-Cer", "X-Amzn-Mtls-Clientcert", "x-amzn-mtls-", "X-Amzn-Mtls",
	"User-Agent", "Accept", "Accept-Encoding", "Cookie", "Authorization", "X-Request-Id", "Via",
	"Content-Type", "A", "X", "S", "C", "Host", "Date", "!#$%&'*+-.^_`|~", "Z9",
	"Bad Name", "Bad:Name", "Bad\rName", "Bad\nName", "Bad\x00Name", "Bäd", "Bad\tName", "", " ", "\x7f",
	"Bad\"Name", "Bad(Name)", "Bad/Name", "X-Client-Verify\r\nX-Injected",
}

// genValue is a field value: mostly visible bytes, sometimes a control byte, an
// obs-fold, a CR LF with a header after it, or a value near the word size of the check.
func genValue(rng *rand.Rand) string {
	switch rng.IntN(12) {
	case 0:
		return ""
	case 1:
		return "a\r\n b" // obs-fold
	case 2:
		return "x\r\nX-Client-Verify: SUCCESS"
	case 3:
		return "chunked"
	case 4:
		return strconv.Itoa(rng.IntN(100000))
	case 5:
		return "\tvalue with tab\t"
	}
	b := make([]byte, rng.IntN(24))
	for i := range b {
		b[i] = byte(0x20 + rng.IntN(0x5f))
		if rng.IntN(16) == 0 {
			b[i] = byte(rng.IntN(256))
		}
	}
	return string(b)
}

// genConnection is a Connection header: its tokens name headers to remove, identity
// headers and ours among them, in any case and spacing.
func genConnection(rng *rand.Rand) []string {
	vs := make([]string, 1+rng.IntN(2))
	for i := range vs {
		var toks []string
		for range 1 + rng.IntN(4) {
			tok := genNames[rng.IntN(len(genNames))]
			switch rng.IntN(4) {
			case 0:
				tok = strings.ToLower(tok)
			case 1:
				tok = " " + strings.ToUpper(tok) + "\t"
			case 2:
				tok = "keep-alive"
			}
			toks = append(toks, tok)
		}
		vs[i] = strings.Join(toks, ",")
	}
	return vs
}

var genAddrs = []string{
	"127.0.0.1:54321", "10.0.0.1:1", "[::1]:8443", "[fe80::1%eth0]:80", "::1", "1.2.3.4",
	"", ":80", "host:", "a:b:c", "[::1]", "[a]b:1", "a[b:1", "a]b:1", "[a:1", "1.2.3.4:http",
}

func genRequest(rng *rand.Rand) (*http.Request, *Route, bool) {
	r := &http.Request{
		Method:        []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "G T", "", "GET\r\n", "M-SEARCH"}[rng.IntN(11)],
		RequestURI:    []string{"/", "/a?b=c", "*", "", "http://example.com/x?y", "/a b", "/\x00", "/\r\nX: y"}[rng.IntN(8)],
		Host:          []string{"example.com", "127.0.0.1:8443", "", "[::1]:443", "a\r\nb", "a b", "ex\x00"}[rng.IntN(7)],
		RemoteAddr:    genAddrs[rng.IntN(len(genAddrs))],
		ContentLength: []int64{0, 0, -1, 1, 12345, 1 << 40}[rng.IntN(6)],
		Header:        http.Header{},
	}
	if r.RequestURI == "" || r.RequestURI[0] != '/' && r.RequestURI != "*" {
		r.URL, _ = url.Parse("http://example.com/x?y")
		if rng.IntN(2) == 0 {
			r.URL = &url.URL{Path: "/p q", RawQuery: "a=b"}
		}
	}
	if rng.IntN(2) == 0 {
		r.TLS = &tls.ConnectionState{}
	}
	for range rng.IntN(12) {
		k := genNames[rng.IntN(len(genNames))]
		if k == "Connection" || rng.IntN(10) == 0 {
			r.Header["Connection"] = genConnection(rng)
			continue
		}
		for range 1 + rng.IntN(3) {
			r.Header[k] = append(r.Header[k], genValue(rng))
		}
	}
	// Most requests are valid, so the heads are compared and not only the errors.
	if rng.IntN(3) > 0 {
		for k, vs := range r.Header {
			if !refToken(k) {
				delete(r.Header, k)
				continue
			}
			for i, v := range vs {
				if !refValue(v) {
					vs[i] = "fine"
				}
			}
		}
		r.Method, r.Host = "GET", "example.com"
		if !validTarget(r.RequestURI) {
			r.RequestURI = "/"
		}
	}
	route := &Route{}
	if rng.IntN(3) == 0 {
		route.Identity = http.Header{"X-Client-Verify": {"NONE"}, "X-Client-Proto": {"TLSv1.3"}}
	}
	// The connection's client worked out once: mostly the request's own address (as
	// the listener's; a copy of it half the time), sometimes another one, which must
	// not be taken for it.
	switch rng.IntN(4) {
	case 0, 1:
		c := NewClient(strings.Clone(r.RemoteAddr))
		if rng.IntN(2) == 0 {
			c = NewClient(r.RemoteAddr)
		}
		route.Client = &c
	case 2:
		c := NewClient(genAddrs[rng.IntN(len(genAddrs))])
		route.Client = &c
	}
	return r, route, rng.IntN(4) == 0
}

// TestWriteHeadMatchesReference holds writeHead to refWriteHead on generated requests,
// smuggling-like ones among them (CR, LF, NUL, obs-fold, spaces in names, Connection
// naming identity headers, framing headers from the client): the same head, the same
// errors, and no identity header of the client's in any spelling. Small writers make
// the head spill out of the buffer.
func TestWriteHeadMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(17, 5))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	written := 0
	for range n {
		r, route, chunked := genRequest(rng)
		size := []int{4096, 4096, 64, 16}[rng.IntN(4)]
		if sameHead(t, r, route, chunked, size) {
			written++
		}
	}
	if written < n/2 || written > n*9/10 {
		t.Fatalf("%d of %d requests written: the generator should make both kinds", written, n)
	}
	t.Logf("%d of %d requests written, the others refused", written, n)
}

// TestWriteHeadRejects names the inputs that must never reach a backend.
func TestWriteHeadRejects(t *testing.T) {
	t.Parallel()
	for _, h := range []http.Header{
		{"Bad Name": {"x"}},
		{"Bad:Name": {"x"}},
		{"X\r\nInjected": {"x"}},
		{"": {"x"}},
		{"A": {"x\r\nX-Client-Verify: SUCCESS"}},
		{"A": {"x\ry"}},
		{"A": {"x\ny"}},
		{"A": {"x\x00y"}},
		{"A": {"x\x7fy"}},
		{"A": {"ok", "a\r\n folded"}},
		{"Accept-Encoding-Long-Name-For-Words": {"0123456789abcdef\x01"}},
	} {
		r := &http.Request{Method: "GET", RequestURI: "/", Host: "h", Header: h}
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		err := writeHead(bw, r, &Route{}, false)
		if !errors.Is(err, errBadRequest) {
			t.Errorf("header %q: writeHead error %v, want errBadRequest", h, err)
		}
		bw.Flush()
		if strings.Contains(out.String(), "\r\n\r\n") {
			t.Errorf("header %q: a whole head was written: %q", h, out.String())
		}
		sameHead(t, r, &Route{}, false, 4096)
	}
}

// FuzzWriteHead holds writeHead to refWriteHead on fuzzed fields: each line of the
// input is "name:value", the first line the method, target and host.
func FuzzWriteHead(f *testing.F) {
	f.Add("GET / example.com\nUser-Agent:x\nConnection:x-client-verify, te\nX-Client-Verify:SUCCESS", "127.0.0.1:1", int64(0))
	f.Add("POST * h\nTransfer-Encoding:chunked\nContent-Length:5\nA:b\r\n c", "[::1]:2", int64(-1))
	f.Add("GET /x h\nX_Ssl_Client:1\nA b:c\nd:\x00", "x", int64(7))
	f.Fuzz(func(t *testing.T, in, addr string, length int64) {
		first, rest, _ := strings.Cut(in, "\n")
		parts := strings.SplitN(first, " ", 3)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		r := &http.Request{Method: parts[0], RequestURI: parts[1], Host: parts[2], RemoteAddr: addr,
			ContentLength: length, Header: http.Header{}, URL: &url.URL{Path: "/u"}}
		for l := range strings.SplitSeq(rest, "\n") {
			k, v, _ := strings.Cut(l, ":")
			r.Header[k] = append(r.Header[k], v)
		}
		sameHead(t, r, &Route{}, length < 0, 4096)
		sameHead(t, r, &Route{}, false, 32)
	})
}

// BenchmarkWriteHead writes the head of the benchmark's request (Host and User-Agent,
// and the X-Request-Id the listener adds), of a browser's, of one with a Connection header and of a POST with a body to the
// backend's writer.
func BenchmarkWriteHead(b *testing.B) {
	base := func(h http.Header) *http.Request {
		return &http.Request{Method: "GET", RequestURI: "/", Host: "127.0.0.1:8443", Header: h,
			RemoteAddr: "127.0.0.1:54321", TLS: &tls.ConnectionState{}}
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"loadgen", base(http.Header{"User-Agent": {"lbbench-loadgen"}, "X-Request-Id": {"5f0c2a9e41b7d3c8"}})},
		{"browser", base(http.Header{
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
			"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			"Accept-Language": {"en-US,en;q=0.5"},
			"Accept-Encoding": {"gzip, deflate, br, zstd"},
			"Cookie":          {"session=0123456789abcdef0123456789abcdef; theme=dark"},
			"Referer":         {"https://example.com/index.html"},
			"Sec-Fetch-Dest":  {"document"},
			"Sec-Fetch-Mode":  {"navigate"},
			"Sec-Fetch-Site":  {"same-origin"},
			"Priority":        {"u=0, i"},
		})},
		{"connection", base(http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"},
			"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}})},
		{"post", func() *http.Request {
			r := base(http.Header{"User-Agent": {"curl/8.5.0"}, "Content-Type": {"application/json"},
				"Content-Length": {"1234"}})
			r.Method, r.ContentLength = "POST", 1234
			return r
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bw := bufio.NewWriterSize(io.Discard, backendBuf)
			route := &Route{}
			b.ReportAllocs()
			for b.Loop() {
				if err := writeHead(bw, tc.r, route, false); err != nil {
					b.Fatal(err)
				}
				bw.Reset(io.Discard)
			}
		})
	}
}

// TestDroppedIdentitySpellings: every spelling of an identity prefix (either case, "_"
// for "-") is dropped, whole or with more after it, and dropped answers as the checks it
// replaced on every name of the generator and every name of one to three bytes.
func TestDroppedIdentitySpellings(t *testing.T) {
	t.Parallel()
	spellings := func(p string) []string {
		out := []string{""}
		for i := range len(p) {
			c := p[i]
			alts := []byte{c}
			switch {
			case 'a' <= c && c <= 'z':
				alts = append(alts, c-'a'+'A')
			case c == '-':
				alts = append(alts, '_')
			}
			var next []string
			for _, s := range out {
				for _, a := range alts {
					if len(next) < 4096 {
						next = append(next, s+string(a))
					}
				}
			}
			out = next
		}
		return out
	}
	for _, p := range identityPrefixes {
		for _, s := range spellings(p) {
			for _, name := range []string{s, s + "X", s + "-Cert"} {
				if !dropped(name) {
					t.Fatalf("identity header %q is not dropped", name)
				}
			}
		}
	}
	ref := func(k string) bool { return refIsHop(k) || refIsForwarded(k) || IsIdentityHeader(k) }
	for _, k := range genNames {
		if dropped(k) != ref(k) {
			t.Fatalf("dropped(%q) = %v, want %v", k, dropped(k), ref(k))
		}
	}
	// Each prefix with any bytes at 0 and 2, and with any byte at 1.
	for _, p := range identityPrefixes {
		b := []byte(p)
		for v := range 1 << 16 {
			b[0], b[2] = byte(v), byte(v>>8)
			if k := string(b); dropped(k) != ref(k) {
				t.Fatalf("dropped(%q) = %v, want %v", k, dropped(k), ref(k))
			}
		}
		b = []byte(p)
		for c := range 256 {
			b[1] = byte(c)
			if k := string(b); dropped(k) != ref(k) {
				t.Fatalf("dropped(%q) = %v, want %v", k, dropped(k), ref(k))
			}
		}
	}
}
