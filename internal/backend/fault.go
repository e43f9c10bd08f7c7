package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
)

// Fault reports whether a failure to reach or hear from a target is the target's own
// fault, so that it counts toward marking the target failing: the target refused or
// reset the connection, its host or network did not answer, the connect or the
// response timed out, or its TLS handshake failed.
//
// Everything else is not the target's doing and is never charged to it: a dial
// cancelled because the client went away (an HTTP/2 stream reset cancels its request's
// context: charging that let any client take a target group down with HEADERS +
// RST_STREAM pairs, issue 18), a shutdown, and local errors of this process or host
// (EMFILE/ENFILE on socket(), EADDRNOTAVAIL when ephemeral ports run out, ENOBUFS,
// ENOMEM, EACCES/EPERM from a firewall, a failed DNS lookup). Those would mark every
// healthy target down at once under local pressure.
func Fault(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, errno := range targetErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return false
	}
	if _, ok := errors.AsType[syscall.Errno](err); ok {
		return false // any other errno is local: see targetErrnos
	}
	// What is left happened after the connection was made: the TLS handshake failed
	// (a certificate the target should not have, an alert, the target closing).
	_, verify := errors.AsType[*tls.CertificateVerificationError](err)
	_, record := errors.AsType[tls.RecordHeaderError](err)
	return verify || record || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isRemoteAlert(err)
}

// targetErrnos are the errors of connect(2) that the target or the path to it causes.
// ENETUNREACH is not among them: it says this host has no route, a local matter.
var targetErrnos = []error{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH, syscall.EHOSTDOWN, syscall.EPIPE,
}

// isRemoteAlert reports whether err is a TLS alert the target sent ("remote error"):
// crypto/tls wraps it in a *net.OpError whose alert type is unexported.
func isRemoteAlert(err error) bool {
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "remote error"
}

// Exhausted reports whether err is this process or host running out of a resource as
// it connects (EMFILE/ENFILE on socket(), EADDRNOTAVAIL when ephemeral ports run out,
// ENOBUFS, ENOMEM): it says nothing of the target, so an active health check that
// meets it is not counted either way (issue 12: tlsgate's own "too many open files"
// marked a healthy target down).
func Exhausted(err error) bool {
	for _, errno := range exhaustedErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

var exhaustedErrnos = []error{syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.ENOBUFS, syscall.ENOMEM}
