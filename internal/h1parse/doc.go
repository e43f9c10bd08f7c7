// Package h1parse is a fast path for reading HTTP/1.x request and response heads: it
// builds the same *http.Request / *http.Response that net/http's ReadRequest and
// ReadResponse would, for a narrow and common shape of message only, and otherwise
// leaves the bufio.Reader untouched so that the caller hands it to net/http.
//
// Why: on a kept-alive HTTPS request net/http's parsers were the largest single cost
// left (textproto's line reads and copies, a string per header key and value). The fast
// path makes one string of the whole head and takes every key and value as a substring
// of it.
//
// The threat is request smuggling: two parsers that disagree on where a message ends.
// The fast path therefore accepts only what it can prove equal to net/http (the
// differential fuzz test FuzzRequest / FuzzResponse holds it to that on every input):
// CRLF line endings, a method from a short list, an origin-form target of safe
// characters, HTTP/1.0 or HTTP/1.1, token header names, visible-ASCII values without
// obs-fold, at most one plain Content-Length, no Transfer-Encoding, and a head that is
// already buffered whole. Anything else — chunked bodies, duplicate or odd
// Content-Length, bare LF or CR, control bytes, absolute or authority form, `*`,
// Expect, Upgrade, Trailer, Pragma, Connection lists, a missing or repeated Host — is
// declined, and net/http decides. It does not check anything net/http would not: the
// caller's own checks (header limits, Host validity) still apply.
package h1parse
