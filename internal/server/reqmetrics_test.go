package server_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"tlsgate/internal/pki"
)

// TestListenerLatencyAndBytes: tlsgate_request_duration_seconds{listener} and
// tlsgate_bytes_total{listener,direction} (issue #6's per-listener latency and bytes)
// count a listener's requests. Three requests on one kept-alive connection: the
// server has recorded the first two once the third is answered (it reads a
// connection's next request after recording the last).
func TestListenerLatencyAndBytes(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil), MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, err := c.Post("https://"+e.addr("one_way")+"/", "text/plain", strings.NewReader("0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	out, err := testutil.CollectAndFormat(e.metrics.RequestSeconds, expfmt.TypeTextPlain, "tlsgate_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `tlsgate_request_duration_seconds_count{listener="one_way"} 2`) &&
		!strings.Contains(string(out), `tlsgate_request_duration_seconds_count{listener="one_way"} 3`) {
		t.Errorf("request latency of one_way not counted:\n%s", out)
	}
	if in := testutil.ToFloat64(e.metrics.Bytes.WithLabelValues("one_way", "in")); in < 20 {
		t.Errorf("bytes in of one_way: %v, want at least the two request bodies (20)", in)
	}
	if out := testutil.ToFloat64(e.metrics.Bytes.WithLabelValues("one_way", "out")); out <= 0 {
		t.Errorf("bytes out of one_way: %v, want the responses", out)
	}
}
