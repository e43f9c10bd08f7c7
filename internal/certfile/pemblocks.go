package certfile

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
)

// Errors of PEM framing, wrapped with the block's index (1-based, in file order).
var (
	ErrDamagedPEM  = errors.New("is damaged or truncated (a BEGIN line without its END line, or bad base64)")
	ErrTrailingPEM = errors.New("is followed by data that is not PEM (a truncated BEGIN line or garbage)")
)

var pemBegin = []byte("-----BEGIN ")

// PEMBlocks decodes every PEM block of data, strictly: each BEGIN line must start a
// block that decodes, and nothing but white space may follow the last block. Text
// before a block is allowed (openssl writes "Bag Attributes" and "subject=" lines there).
//
// encoding/pem alone is lenient in two ways that lose trust material silently: Decode
// skips a block it cannot decode and returns the next one, and the loop callers write
// stops at the first failure. So a chain whose intermediate was cut mid-block served the
// leaf alone, and a CA bundle cut in its second CA dropped that CA (issue 12).
func PEMBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			break
		}
		n := len(blocks) + 1
		b, after := pem.Decode(rest[i:])
		consumed := rest[i : len(rest)-len(after)]
		if b == nil || bytes.Count(consumed, pemBegin) != 1 {
			// nil: no block decodes from here; more than one BEGIN: Decode skipped
			// this block for a later one.
			return nil, fmt.Errorf("PEM block %d %w", n, ErrDamagedPEM)
		}
		blocks = append(blocks, b)
		rest = after
	}
	if len(blocks) > 0 && len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("PEM block %d (the last) %w", len(blocks), ErrTrailingPEM)
	}
	return blocks, nil
}
