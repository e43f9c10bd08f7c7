package listener

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tlsgate/internal/metrics"
)

// The metric children every HTTP request updates, looked up once per label set and
// kept: WithLabelValues validates, hashes and looks up its labels under a lock on every
// call, and a proxied request made six such calls (about 6 % of a keep-alive request's
// instructions under callgrind). No code deletes these children, so a kept one is the
// one the registry exports.

// requestSet is one listener's request metrics.
type requestSet struct {
	seconds  prometheus.Observer
	in, out  prometheus.Counter
	byStatus statusCounters
}

// upstreamSet is one target's metrics (its errors counter is left out: made on the
// first error, so a target that never failed exports no error series).
type upstreamSet struct {
	seconds  prometheus.Observer
	byStatus statusCounters
}

// statusCounters is a counter vector's children by status code, after its fixed labels.
type statusCounters struct {
	vec    *prometheus.CounterVec
	labels []string
	codes  sync.Map // int -> prometheus.Counter
}

func (s *statusCounters) get(code int) prometheus.Counter {
	if c, ok := s.codes.Load(code); ok {
		return c.(prometheus.Counter)
	}
	lv := append(append([]string(nil), s.labels...), strconv.Itoa(code))
	c, _ := s.codes.LoadOrStore(code, s.vec.WithLabelValues(lv...))
	return c.(prometheus.Counter)
}

// metricSets holds the request and upstream sets of one listener.
type metricSets struct {
	m         *metrics.Metrics
	requests  sync.Map // listener id -> *requestSet
	upstreams sync.Map // upstreamKey -> *upstreamSet
}

type upstreamKey struct{ group, target string }

func (s *metricSets) request(id string) *requestSet {
	if r, ok := s.requests.Load(id); ok {
		return r.(*requestSet)
	}
	r := &requestSet{
		seconds:  s.m.RequestSeconds.WithLabelValues(id),
		in:       s.m.Bytes.WithLabelValues(id, "in"),
		out:      s.m.Bytes.WithLabelValues(id, "out"),
		byStatus: statusCounters{vec: s.m.Requests, labels: []string{id}},
	}
	v, _ := s.requests.LoadOrStore(id, r)
	return v.(*requestSet)
}

func (s *metricSets) upstream(group, target string) *upstreamSet {
	k := upstreamKey{group, target}
	if u, ok := s.upstreams.Load(k); ok {
		return u.(*upstreamSet)
	}
	u := &upstreamSet{
		seconds:  s.m.UpstreamSeconds.WithLabelValues(group, target),
		byStatus: statusCounters{vec: s.m.UpstreamRequests, labels: []string{group, target}},
	}
	v, _ := s.upstreams.LoadOrStore(k, u)
	return v.(*upstreamSet)
}

// httpDate is the Date header for now, formatted once per second and shared: a response
// whose backend sent none formatted it each time (2 % of a keep-alive request's
// instructions).
func httpDate(now time.Time) string {
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	text := now.UTC().Format(http.TimeFormat)
	dateCache.Store(&dateStamp{sec: sec, text: text})
	return text
}

type dateStamp struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[dateStamp]
