package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"tlsgate/internal/h1parse"
	"tlsgate/internal/lazytime"
)

// readResponse reads the response header to r, skipping 1xx responses; store is the
// storage for the head's strings (Route.Head).
func readResponse(bc *backendConn, r *http.Request, store []byte) (*http.Response, error) {
	if _, err := bc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			err = fmt.Errorf("%w: %w", errNoResponse, err)
		}
		return nil, err
	}
	for {
		// net/http's unless common and buffered; the fast path fills the connection's map
		// and block
		resp, err := h1parse.ReadResponseBlock(bc.br, r, bc.header(), &bc.blk, store)
		if err != nil {
			return nil, fmt.Errorf("reading the backend's response: %w", err)
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("backend switched protocols on a request that asked for no upgrade")
		}
		if resp.StatusCode >= 200 {
			return resp, nil
		}
	}
}

// setReadDeadline sets the connection's read deadline to t, or to now when ctx has
// ended: the AfterFunc that cuts the exchange short when the client leaves may have run
// before, and its deadline must not be overwritten (the exchange would wait for the
// backend).
func (bc *backendConn) setReadDeadline(ctx context.Context, t time.Time) {
	bc.rdl = lazytime.Of(t)
	_ = bc.conn.SetReadDeadline(t)
	if ctx.Err() != nil {
		now := time.Now()
		bc.rdl = lazytime.Of(now)
		_ = bc.conn.SetReadDeadline(now)
	}
}

// readTimeout sets the response timeout, lazily as the listener sets a client's
// deadlines: a deadline still armed from the connection's last response that falls at
// most the slack before the new one stands (lazytime.Keeps), so the response timeout
// may fire that much early. A response whose body came with its header keeps its
// deadline (bodyBuffered), and the next request on the connection, soon after, sets
// none.
func (bc *backendConn) readTimeout(ctx context.Context, d time.Duration) {
	if !lazytime.Keeps(bc.rdl, lazytime.Now()+int64(d), d) || ctx.Err() != nil {
		bc.setReadDeadline(ctx, time.Now().Add(d))
	}
}

// bodyBuffered reports whether resp's whole body is in br already: reading it waits
// for nothing, so the response timeout may stay armed.
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	return resp != nil && resp.ContentLength >= 0 && len(resp.TransferEncoding) == 0 &&
		int64(br.Buffered()) >= resp.ContentLength
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// copyResponse writes the backend's response to w; it reports whether the response was
// read to its end (so the backend connection can be reused) and the backend's error if
// its body broke off. A field's single value goes to the client's header in vals, the
// request's own storage (Route.vals): the response's value slices may be the backend
// connection's block (h1parse.ReadResponseBlock), which its next response overwrites
// while the client's header may still be in use.
func copyResponse(w http.ResponseWriter, resp *http.Response, vals []string) (bool, error) {
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vs := range resp.Header {
		if k != "Content-Length" && isHop(k) || (len(conn) > 0 && Listed(conn, k)) {
			continue
		}
		// Every slice of the block has one value, and there are at most BlockValues of
		// them (a field repeated has its own slice, and with more fields none is the
		// block's): vals, as long, takes each.
		if len(vs) == 1 && len(vals) > 0 {
			vals[0] = vs[0]
			vs, vals = vals[:1:1], vals[1:]
		}
		h[k] = vs
	}
	if len(resp.Trailer) > 0 {
		for k := range resp.Trailer {
			h.Add("Trailer", k)
		}
	}
	w.WriteHeader(resp.StatusCode)
	buf := buffers.Get().(*[32 << 10]byte)
	defer buffers.Put(buf)
	// A body of unknown length may be a stream (server-sent events): pass each read on.
	flush := resp.ContentLength < 0
	for {
		n, err := resp.Body.Read(buf[:])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, nil // the client went away
			}
			if flush {
				_ = http.NewResponseController(w).Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	return true, nil
}
