package listener

import (
	"bufio"
	"net/http"
)

// A worker's run of requests on one connection (serveBuffered, stay) keeps a response
// buffer and the two header maps from one request to the next, and hands them back to
// the pools when the run ends: with many requests in flight at once the pools' private
// slots are taken, and every Get and Put went through their shared queues (about 1.5 %
// of the server's samples on the bare CPU). It keeps the last request's writer too
// (serveOne), whose 458 bytes were the largest allocation of a request, cold in the
// cache. An idle connection holds none of them.
type keptBufs struct {
	bw          *bufio.Writer
	hdr, reqHdr http.Header
	w           *h1writer    // the last request's writer, for the next (not pooled: one connection's)
	cw          *clientWatch // the run's client watch (clientgone.go), its timer possibly pending
	head        []byte       // a left writer's response head storage, for the next writer (responseHead)
}

// writer returns the run's response buffer, or one from the pool.
func (k *keptBufs) writer() *bufio.Writer {
	if bw := k.bw; bw != nil {
		k.bw = nil
		return bw
	}
	return writers.Get().(*bufio.Writer)
}

// header returns the run's empty response header map, or one from the pool.
func (k *keptBufs) header() http.Header {
	if h := k.hdr; h != nil {
		k.hdr = nil
		return h
	}
	return headers.Get().(http.Header)
}

// reqHeader returns the run's empty request header map, or one from the pool.
func (k *keptBufs) reqHeader() http.Header {
	if h := k.reqHdr; h != nil {
		k.reqHdr = nil
		return h
	}
	return reqHeaders.Get().(http.Header)
}

// keepReqHeader takes back a request's header map, lent by readRequest, emptied; one
// that grew past a small map is left to the GC.
func (k *keptBufs) keepReqHeader(hdr http.Header) {
	if len(hdr) <= reuseFields {
		clear(hdr)
		k.reqHdr = hdr
	}
}

// release hands what the run kept back to the pools: the run has ended.
func (k *keptBufs) release() {
	if k.bw != nil {
		writers.Put(k.bw)
	}
	if k.hdr != nil {
		headers.Put(k.hdr)
	}
	if k.reqHdr != nil {
		reqHeaders.Put(k.reqHdr)
	}
	if k.cw != nil {
		watches.Put(k.cw) // a pending timer finds no request: harmless for its next owner
	}
	*k = keptBufs{}
}
