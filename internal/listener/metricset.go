package listener

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tlsgate/internal/lazytime"
	"tlsgate/internal/metrics"
)

// The metric children every HTTP request updates, looked up once per label set and
// kept: WithLabelValues validates, hashes and looks up its labels under a lock on every
// call, and a proxied request made six such calls (about 6 % of a keep-alive request's
// instructions under callgrind). No code deletes these children, so a kept one is the
// one the registry exports.

// requestSet is one listener's request metrics.
type requestSet struct {
	id       string
	seconds  prometheus.Observer
	in, out  prometheus.Counter
	byStatus statusCounters
}

// upstreamSet is one target's metrics (its errors counter is left out: made on the
// first error, so a target that never failed exports no error series).
type upstreamSet struct {
	key      upstreamKey
	seconds  prometheus.Observer
	byStatus statusCounters
}

// statusCounters is a counter vector's children by status code, after its fixed labels.
type statusCounters struct {
	vec    *prometheus.CounterVec
	labels []string
	codes  sync.Map // int -> prometheus.Counter
	// recent holds a counter per code mod 31 (no two of 200, 201, 204, 206, 301, 302,
	// 304, 400, 401, 403, 404, 429, 499, 500 and 502-504 share a slot): an index instead
	// of sync.Map's hashing of a boxed int, twice per request (about 150 instructions
	// each). A code whose slot another holds is looked up in codes.
	recent [31]atomic.Pointer[codeCounter]
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

func (s *statusCounters) get(code int) prometheus.Counter {
	slot := &s.recent[uint(code)%uint(len(s.recent))]
	if e := slot.Load(); e != nil && e.code == code {
		return e.c
	}
	c := s.lookup(code)
	if slot.Load() == nil {
		slot.CompareAndSwap(nil, &codeCounter{code, c}) // the first code keeps its slot
	}
	return c
}

func (s *statusCounters) lookup(code int) prometheus.Counter {
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
	// The sets used last, checked before the maps: a listener with one target group
	// and target (the usual case) finds its set by comparing strings that are the same
	// pointers, where sync.Map hashed a two-string key (about 400 instructions per
	// request). Several targets take turns here, and the maps answer.
	lastRequest  atomic.Pointer[requestSet]
	lastUpstream atomic.Pointer[upstreamSet]
}

type upstreamKey struct{ group, target string }

func (s *metricSets) request(id string) *requestSet {
	if r := s.lastRequest.Load(); r != nil && r.id == id {
		return r
	}
	r := s.requestSet(id)
	s.lastRequest.Store(r)
	return r
}

func (s *metricSets) requestSet(id string) *requestSet {
	if r, ok := s.requests.Load(id); ok {
		return r.(*requestSet)
	}
	r := &requestSet{
		id:       id,
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
	if u := s.lastUpstream.Load(); u != nil && u.key == k {
		return u
	}
	u := s.upstreamSet(k)
	s.lastUpstream.Store(u)
	return u
}

func (s *metricSets) upstreamSet(k upstreamKey) *upstreamSet {
	if u, ok := s.upstreams.Load(k); ok {
		return u.(*upstreamSet)
	}
	u := &upstreamSet{
		key:      k,
		seconds:  s.m.UpstreamSeconds.WithLabelValues(k.group, k.target),
		byStatus: statusCounters{vec: s.m.UpstreamRequests, labels: []string{k.group, k.target}},
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

// dateNow is httpDate(time.Now()) that reads the monotonic clock alone while the second
// it formatted lasts: time.Now reads the wall clock too, and the clock was the largest
// user-space item of a keep-alive request on the bare CPU. A step of the wall clock shows
// in Date within a second.
func dateNow() string {
	if d := dateCache.Load(); d != nil && lazytime.Now() < d.end {
		return d.text
	}
	return stampNow().text
}

// stampNow reads the clock and makes the current second's stamp.
func stampNow() *dateStamp {
	now := time.Now()
	mono := lazytime.Of(now)
	d := &dateStamp{sec: now.Unix(), end: mono + int64(time.Second) - int64(now.Nanosecond()),
		text: now.UTC().Format(http.TimeFormat), wall: now, mono: mono}
	dateCache.Store(d)
	return d
}

// wallAt is the wall clock's time at the lazytime reading n of the current second (a
// request's end): the second's stamp's time moved by the monotonic clock's difference,
// where time.Now would read the clock again. As in Date, a step of the wall clock shows
// within a second. A reading past the stamp's second (or with no stamp of dateNow's)
// reads the clock and makes the next stamp.
func wallAt(n int64) time.Time {
	d := dateCache.Load()
	if d == nil || d.end == 0 || n >= d.end {
		d = stampNow()
	}
	return d.wall.Add(time.Duration(n - d.mono))
}

type dateStamp struct {
	sec  int64
	end  int64 // lazytime's now at which sec ends (0: unknown; dateNow formats again)
	text string
	// wall is the clock's reading the stamp was made of (dateNow's; zero for
	// httpDate's), mono its lazytime reading.
	wall time.Time
	mono int64
}

var dateCache atomic.Pointer[dateStamp]
