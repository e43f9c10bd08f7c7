package listener

import (
	"bufio"
	"net/http"
	"sync"
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
	reqHead     *[reqHeadBytes]byte
}

// reqHeadBytes is the longest request head whose bytes a run keeps in its storage
// (requestHead); a longer one gets a string of its own.
const reqHeadBytes = 1 << 10

// reqHeads are the storage of the request heads h1parse's fast path reads: a run takes
// one (requestHead) and hands it back at its end, unless a request left it (loseHead).
var reqHeads = sync.Pool{New: func() any { return new([reqHeadBytes]byte) }}

// requestHead returns the storage the run lends h1parse.ReadFast for its requests'
// heads: a request without a body that the fast path reads has its strings (method
// aside: target, Host, header names and values, cookies, user agent, request id) as
// views of it, overwritten by the run's next request. A string per request was the last
// allocation of a kept-alive request, its first stores cold in the cache.
//
// Who keeps a string of such a request, and why the reuse is safe (the audit): the
// next head is read only once serveOne has returned, by the same worker.
//   - The access line (serveRequest: method, path, host, user agent, request id, an
//     error made with fmt from the host or the path): encoded and copied into the log's
//     batch (logsink) or written by slog's text handler before serveRequest returns.
//   - Routing (validHost, State.Lookup, Domain.route, dropParams, mergeSlashes, the
//     sticky cookie's Group.Sticky, hasDotSegment), the redirect and the error pages:
//     read in the request; nothing stored.
//   - Metric labels: the listener's, the group's and the target's ids, status codes,
//     the gRPC status (cloned, grpcStatus: a view of the response's head): none is the
//     request's. The observer (observeRule) gets the rule's path, from the config.
//   - The request's header map (a view in every key and value) and h1parse's block:
//     emptied and handed back once the request is served (serveOne).
//   - The client's response header takes the X-Request-Id slice: emptied after the
//     response (serveOne).
//   - httpproxy: the head written to the backend (writeHead) and retries to another
//     target, or on a new connection, within Serve; errors are fmt's strings; the
//     backend connection's response block keeps a pointer to the request (resp.Request),
//     never read after. Upgrades (ReverseProxy, which runs goroutines) never come from
//     the fast path: it declines Upgrade.
//   - The client watch (clientgone.go) and the request's context (reqctx.go) keep no
//     string of the request.
//   - A request with a body is never lent (h1parse): the proxy writes its body from a
//     goroutine of its own, which may outlive the request.
//   - Kept by what may outlive the request, so the storage is left to the GC, never
//     written again (loseHead): a request sent to an HTTP/2 group (net/http's HTTP/2
//     client encodes the head on a goroutine of its own, which may run after Serve
//     returned on a cancelled request; its outgoing request shares the header map too),
//     and a request whose handler panicked.
func (k *keptBufs) requestHead() *[reqHeadBytes]byte {
	if k.reqHead == nil {
		k.reqHead = reqHeads.Get().(*[reqHeadBytes]byte)
	}
	return k.reqHead
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
	if k.reqHead != nil {
		reqHeads.Put(k.reqHead)
	}
	*k = keptBufs{}
}

// heldBeyond notes that something may keep the current request, its header map and its
// strings after it was served (an HTTP/2 client's goroutine): serveOne then leaves the
// map, h1parse's block (which holds the map's values) and the head's storage to the GC
// (loseHead).
func (h *h1conn) heldBeyond() { h.in.held = true }

// doneWith ends a served request's hold on the run's storage: its header map (reqHdr,
// emptied) goes back to the run and the head's storage stays for the run's next
// request, unless something may keep the request beyond (heldBeyond): then both are
// left to the GC.
func (h *h1conn) doneWith(reqHdr http.Header) {
	if h.in.held {
		h.loseHead()
		return
	}
	h.kept.keepReqHeader(reqHdr)
	h.in.lent = false
}

// loseHead leaves the run's head storage to the GC when the current request's strings
// are views of it: whatever keeps them sees them unchanged, and the run's next request
// gets storage of its own.
func (h *h1conn) loseHead() {
	if h.in.lent {
		h.kept.reqHead = nil
	}
	h.in.lent = false
}
