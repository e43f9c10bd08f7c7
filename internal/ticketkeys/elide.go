package ticketkeys

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// A policy with a CA bundle (mutual, optional) issues tickets whose session state holds
// the client's certificates and the verified chain without its leaf: the bundle's CA
// certificate(s), which the server already has — about half of an ECDSA P-256 ticket.
// The ticket travels in every resuming ClientHello, which crypto/tls hashes twice (binder
// and transcript), and is opened and sealed again on each resumption. So the state is
// sealed with every occurrence of a bundle certificate's DER replaced by its index in the
// bundle.
//
// The search is over bytes, not over crypto/tls's encoding of the state: a DER
// certificate is self-delimiting (a SEQUENCE header gives its length), so each 0x30 that
// heads a SEQUENCE of a bundle certificate's length is compared with those certificates.
// A Go release that changes the encoding then costs at most the saving, never a wrong
// state. The references are kept out of band, ahead of the remaining bytes:
//
//	uvarint n, then n × (uvarint gap, uvarint index), then the remaining bytes
//
// where gap is how many remaining bytes come before the certificate (counted from the
// end of the previous one) and index its place in the bundle. No marker is in band, so
// no byte of the state needs escaping. An index is enough: the bundle's digest is part
// of the key the ticket is sealed with (Attach), so a ticket only opens under the very
// bundle it was elided against.

// elider elides and restores the certificates of one bundle. It is immutable.
type elider struct {
	ders  [][]byte      // the bundle, in order; a reference is an index into it
	byLen map[int][]int // DER length → indexes of the certificates of that length
}

// newElider returns the elider of ders (DER certificates), or nil when none of them is
// a DER SEQUENCE that could be found in a state.
func newElider(ders [][]byte) *elider {
	e := &elider{ders: ders, byLen: map[int][]int{}}
	for i, d := range ders {
		if seqLen(d) == len(d) {
			e.byLen[len(d)] = append(e.byLen[len(d)], i)
		}
	}
	if len(e.byLen) == 0 {
		return nil
	}
	return e
}

// digest names the bundle for key derivation: SHA-256 over each DER, length first.
func digest(ders [][]byte) string {
	h := sha256.New()
	for _, d := range ders {
		h.Write(binary.AppendUvarint(nil, uint64(len(d))))
		h.Write(d)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// seqLen is the total length of the DER SEQUENCE b starts with (header included), or
// 0 when b does not start with one in the forms a certificate takes (short length, or
// one to three length bytes).
func seqLen(b []byte) int {
	if len(b) < 2 || b[0] != 0x30 {
		return 0
	}
	l := int(b[1])
	if l < 0x80 {
		return 2 + l
	}
	k := l - 0x80
	if k < 1 || k > 3 || len(b) < 2+k {
		return 0
	}
	l = 0
	for _, c := range b[2 : 2+k] {
		l = l<<8 | int(c)
	}
	return 2 + k + l
}

// match is the index of the bundle certificate b starts with, or -1.
func (e *elider) match(b []byte) int {
	n := seqLen(b)
	if n == 0 || n > len(b) {
		return -1
	}
	for _, i := range e.byLen[n] {
		if bytes.Equal(b[:n], e.ders[i]) {
			return i
		}
	}
	return -1
}

// elide returns state with each bundle certificate in it replaced by a reference,
// leftmost first, in the format above: one allocation, the result.
func (e *elider) elide(state []byte) []byte {
	type ref struct{ at, index int }
	var buf [8]ref
	refs, elided := buf[:0], 0
	for i := 0; i < len(state); {
		j := bytes.IndexByte(state[i:], 0x30)
		if j < 0 {
			break
		}
		i += j
		if k := e.match(state[i:]); k >= 0 {
			refs = append(refs, ref{i, k})
			elided += len(e.ders[k])
			i += len(e.ders[k])
			continue
		}
		i++
	}
	out := make([]byte, 0, binary.MaxVarintLen64*(1+2*len(refs))+len(state)-elided)
	out = binary.AppendUvarint(out, uint64(len(refs)))
	last := 0 // end of the previous certificate
	for _, r := range refs {
		out = binary.AppendUvarint(out, uint64(r.at-last))
		out = binary.AppendUvarint(out, uint64(r.index))
		last = r.at + len(e.ders[r.index])
	}
	last = 0
	for _, r := range refs {
		out = append(out, state[last:r.at]...)
		last = r.at + len(e.ders[r.index])
	}
	return append(out, state[last:]...)
}

// restore undoes elide; ok is false when p is not in its format or names a
// certificate the bundle does not have.
func (e *elider) restore(p []byte) (state []byte, ok bool) {
	n, p, ok := uvarint(p)
	if !ok || n > uint64(len(p))/2 { // each reference takes at least two bytes
		return nil, false
	}
	type ref struct{ gap, index uint64 }
	refs := make([]ref, n)
	size := 0
	for i := range refs {
		var r ref
		if r.gap, p, ok = uvarint(p); !ok {
			return nil, false
		}
		if r.index, p, ok = uvarint(p); !ok || r.index >= uint64(len(e.ders)) {
			return nil, false
		}
		refs[i] = r
		size += len(e.ders[r.index])
	}
	state = make([]byte, 0, size+len(p))
	for _, r := range refs {
		if r.gap > uint64(len(p)) {
			return nil, false
		}
		state = append(state, p[:r.gap]...)
		state = append(state, e.ders[r.index]...)
		p = p[r.gap:]
	}
	return append(state, p...), true
}

// uvarint reads one minimally encoded uvarint off the front of p.
func uvarint(p []byte) (uint64, []byte, bool) {
	v, k := binary.Uvarint(p)
	if k <= 0 || (k > 1 && p[k-1] == 0) {
		return 0, nil, false
	}
	return v, p[k:], true
}
