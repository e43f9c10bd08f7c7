package listener

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"tlsgate/internal/httpproxy"
	"tlsgate/internal/metrics"
)

// TestUpstreamErrReused: an HTTP/1 writer keeps its proxy Err function for the run's
// next request; each call must reach the current request's line and failure flag, not
// those of the request the function was made for, and a client that left is not the
// upstream's failure. No allocation per request.
func TestUpstreamErrReused(t *testing.T) {
	w := new(h1writer)
	var line1, line2 Line
	var failed1, failed2 bool
	boom := errors.New("backend unreachable")
	upstreamErr(w, &line1, &failed1)(boom)
	if line1.Err != boom || !failed1 {
		t.Fatalf("first request: line err %v failed %v", line1.Err, failed1)
	}
	upstreamErr(w, &line2, &failed2)(httpproxy.ErrClientClosed)
	if line2.Err != httpproxy.ErrClientClosed || failed2 {
		t.Fatalf("second request: line err %v failed %v, want ErrClientClosed, not failed", line2.Err, failed2)
	}
	if line1.Err != boom {
		t.Fatalf("the second request's error reached the first's line: %v", line1.Err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = upstreamErr(w, &line2, &failed2) }); n != 0 {
		t.Fatalf("%v allocations per request's Err, want 0", n)
	}
}

// TestDateInWriter: a response without a Date gets the current one, with no
// allocation per response, and a Date the handler set is the one written.
func TestDateInWriter(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	w := new(h1writer)
	var out bytes.Buffer
	h, bw := &h1conn{}, bufio.NewWriter(&out)
	reset := func(hdr http.Header) {
		out.Reset()
		bw.Reset(&out)
		w.h1resp = h1resp{h: h, bw: bw, req: r, header: hdr, remain: -1}
	}
	dates := func() []string {
		_ = bw.Flush()
		var ds []string
		for line := range strings.SplitSeq(out.String(), "\r\n") {
			if d, ok := strings.CutPrefix(line, "Date: "); ok {
				ds = append(ds, d)
			}
		}
		return ds
	}
	reset(http.Header{})
	w.WriteHeader(http.StatusOK)
	ds := dates()
	if len(ds) != 1 {
		t.Fatalf("Dates %q, want one", ds)
	}
	d, err := http.ParseTime(ds[0])
	if err != nil || time.Since(d) > time.Minute || time.Until(d) > time.Minute {
		t.Fatalf("Date %q (%v): not now", ds[0], err)
	}
	if n := testing.AllocsPerRun(100, func() { reset(w.header); clear(w.header); w.WriteHeader(http.StatusOK) }); n >= 1 {
		t.Fatalf("%v allocations per response without a Date, want none", n)
	}
	reset(http.Header{"Date": {"Sun, 06 Nov 1994 08:49:37 GMT"}})
	w.WriteHeader(http.StatusOK)
	if ds := dates(); len(ds) != 1 || ds[0] != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Fatalf("the handler's Date became %q", ds)
	}
}

// TestGRPCStatusOutlivesHead: the grpc-status of an HTTP/1 response is a view of the
// writer's response head (responseHead), which the writer's next request overwrites;
// the access line and the metric's label must keep the value it had.
func TestGRPCStatusOutlivesHead(t *testing.T) {
	m := metrics.New()
	l := &Listener{deps: Deps{Metrics: m}}
	w := new(h1writer)
	head := responseHead(w)
	if len(head) != respHeadBytes || &responseHead(w)[0] != &head[0] {
		t.Fatal("the writer's response head is not kept")
	}
	copy(head, "14")
	w.header = http.Header{"Grpc-Status": {unsafe.String(&head[0], 2)}}
	r, _ := http.NewRequest(http.MethodPost, "/svc/Method", nil)
	r.Header.Set("Content-Type", "application/grpc")
	var line Line
	line.Listener = "h1"
	l.grpcStatus(&line, &statusWriter{ResponseWriter: w}, r)
	copy(head, "99") // the writer's next response
	if line.GRPCStatus != "14" {
		t.Fatalf("the line's grpc status became %q with the next response", line.GRPCStatus)
	}
	if n := testutil.ToFloat64(m.GRPCRequests.WithLabelValues("h1", "14")); n != 1 {
		t.Fatalf("grpc requests with status 14: %v, want 1 (the label changed with the next response?)", n)
	}
}

// TestStatusLines: the status line of every code, made once or not, is the one written
// a piece at a time: "HTTP/1.1", the code's digits, its text (or "status code N").
func TestStatusLines(t *testing.T) {
	var out bytes.Buffer
	w := &h1writer{}
	w.bw = bufio.NewWriter(&out)
	for code := -1; code <= 1000; code++ {
		out.Reset()
		w.writeStatus(code)
		_ = w.bw.Flush()
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		if want := "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"; out.String() != want {
			t.Fatalf("code %d: %q, want %q", code, out.String(), want)
		}
	}
}

// TestWriteFields: the fields appended to the writer's free buffer are those written a
// field at a time (up to the map's order): every valid field, no trailer, no invalid
// name or value, through writers too small for the head and partly filled ones.
func TestWriteFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	names := []string{"Content-Type", "Content-Length", "Date", "X-Request-Id", "Set-Cookie",
		"Trailer:Grpc-Status", "Bad Name", "Bad\r\nName", "", "X-Long-" + strings.Repeat("n", 70)}
	values := []string{"", "text/plain", "12345", "a\r\nInjected: 1", "x\x00y", "\tt\t",
		strings.Repeat("v", 100), "Sun, 06 Nov 1994 08:49:37 GMT"}
	for i := range 20000 {
		h := http.Header{}
		for range rng.IntN(8) {
			k := names[rng.IntN(len(names))]
			h[k] = append(h[k], values[rng.IntN(len(values))])
		}
		var want []string
		for k, vs := range h {
			for _, v := range vs {
				if !strings.HasPrefix(k, http.TrailerPrefix) && httpproxy.ValidToken(k) && httpproxy.ValidValue(v) {
					want = append(want, k+": "+v)
				}
			}
		}
		var out bytes.Buffer
		w := &h1writer{}
		w.bw = bufio.NewWriterSize(&out, []int{16, 64, 256, 4096}[rng.IntN(4)])
		pre := strings.Repeat("p", rng.IntN(20))
		_, _ = w.bw.WriteString(pre)
		w.header = h
		w.writeFields()
		_ = w.bw.Flush()
		got, ok := strings.CutPrefix(out.String(), pre)
		if !ok || (len(want) > 0) != strings.HasSuffix(got, "\r\n") {
			t.Fatalf("%d: header %q: wrote %q", i, h, out.String())
		}
		lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
		if got == "" {
			lines = nil
		}
		slices.Sort(lines)
		slices.Sort(want)
		if !slices.Equal(lines, want) {
			t.Fatalf("%d: header %q: wrote %q, want the lines %q", i, h, got, want)
		}
	}
}
