package h2proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is a backend speaking HTTP/2 frames by hand. On its first connection it turns
// the first request away with refuse (after that request's HEADERS arrived, so the
// proxy has written them); every other request gets 200.
type rawH2 struct {
	addr  string
	conns atomic.Int32
}

func startRawH2(t *testing.T, refuse func(fr *http2.Framer, streamID uint32)) *rawH2 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawH2{addr: ln.Addr().String()}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			first := b.conns.Add(1) == 1
			go b.serve(c, first, refuse)
		}
	}()
	return b
}

func (b *rawH2) serve(c net.Conn, first bool, refuse func(*http2.Framer, uint32)) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if first {
				first = false
				refuse(fr, f.StreamID)
				continue
			}
			hb.Reset()
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(),
				EndHeaders: true, EndStream: true})
		}
	}
}

// TestRefusedStreamRetried: a stream the backend refused (RST_STREAM REFUSED_STREAM, or
// a graceful GOAWAY whose last stream id is below it) was not processed (RFC 9113
// §8.7, §6.8): a request without a body goes again although its headers were written.
func TestRefusedStreamRetried(t *testing.T) {
	cases := map[string]func(fr *http2.Framer, id uint32){
		"RST_STREAM": func(fr *http2.Framer, id uint32) { _ = fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) },
		"GOAWAY":     func(fr *http2.Framer, id uint32) { _ = fr.WriteGoAway(id-1, http2.ErrCodeNo, nil) },
	}
	for name, refuse := range cases {
		t.Run(name, func(t *testing.T) {
			b := startRawH2(t, refuse)
			p := New(nil)
			defer p.Close()
			if w := serve(p, &h2cBackend{addr: b.addr}, nil); w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200 from a second attempt: %s", w.Code, w.Body)
			}
		})
	}
}
