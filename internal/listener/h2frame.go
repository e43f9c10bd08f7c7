package listener

import "encoding/binary"

// HTTP/2 frame types and flags the guard looks at (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameContinuation = 0x9

	flagAck        = 0x1 // SETTINGS, PING
	flagEndStream  = 0x1 // DATA, HEADERS
	flagEndHeaders = 0x4 // HEADERS, CONTINUATION

	// HTTP/2 error codes sent in GOAWAY.
	codeInadequateSecurity = 0xc
	codeEnhanceYourCalm    = 0xb

	// clientPreface starts every HTTP/2 connection from the client.
	clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// frameHeader is the fixed 9-byte head of an HTTP/2 frame.
type frameHeader struct {
	length uint32
	typ    byte
	flags  byte
	stream uint32
}

func (h frameHeader) has(flag byte) bool { return h.flags&flag != 0 }

// frameScan follows the frame boundaries of one direction of an HTTP/2 connection from
// the bytes passing through, without buffering payloads: it reports each frame's header
// when the header is complete (onHead) and the frame when its payload has passed (onEnd).
type frameScan struct {
	skip int // bytes of the client preface still to pass
	head [9]byte
	hn   int // bytes of head collected
	cur  frameHeader
	left int // payload bytes of cur still to pass
}

// atBoundary reports whether the bytes so far end with a whole frame.
func (f *frameScan) atBoundary() bool { return f.skip == 0 && f.hn == 0 && f.left == 0 }

// feed passes b; the first error of a callback stops it and is returned.
func (f *frameScan) feed(b []byte, onHead, onEnd func(frameHeader) error) error {
	for len(b) > 0 {
		switch {
		case f.skip > 0:
			k := min(f.skip, len(b))
			f.skip -= k
			b = b[k:]
		case f.left > 0:
			k := min(f.left, len(b))
			f.left -= k
			b = b[k:]
			if f.left == 0 && onEnd != nil {
				if err := onEnd(f.cur); err != nil {
					return err
				}
			}
		default:
			k := copy(f.head[f.hn:], b)
			f.hn += k
			b = b[k:]
			if f.hn < len(f.head) {
				return nil
			}
			f.hn = 0
			f.cur = frameHeader{
				length: uint32(f.head[0])<<16 | uint32(f.head[1])<<8 | uint32(f.head[2]),
				typ:    f.head[3], flags: f.head[4],
				stream: binary.BigEndian.Uint32(f.head[5:]) & (1<<31 - 1),
			}
			f.left = int(f.cur.length)
			if onHead != nil {
				if err := onHead(f.cur); err != nil {
					return err
				}
			}
			if f.left == 0 && onEnd != nil {
				if err := onEnd(f.cur); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// toBoundary is how many bytes of p finish the frame in progress (0 at a boundary),
// or len(p) when p does not reach the end of it.
func (f frameScan) toBoundary(p []byte) int {
	n := 0
	for !f.atBoundary() && n < len(p) {
		k := f.left
		if f.hn > 0 || k == 0 {
			k = len(f.head) - f.hn
		}
		k = min(k, len(p)-n)
		_ = f.feed(p[n:n+k], nil, nil)
		n += k
	}
	return n
}

// emptySettings is a SETTINGS frame with no settings: the least server preface
// (RFC 9113 §3.4).
func emptySettings() []byte { return []byte{0, 0, 0, frameSettings, 0, 0, 0, 0, 0} }

// goAway is a GOAWAY frame: the last stream the server may have processed and why.
func goAway(last uint32, code uint32) []byte {
	b := make([]byte, 9+8)
	b[2] = 8
	b[3] = frameGoAway
	binary.BigEndian.PutUint32(b[9:], last&(1<<31-1))
	binary.BigEndian.PutUint32(b[13:], code)
	return b
}
