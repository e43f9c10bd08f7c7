package probe

import (
	"bytes"
	"fmt"
	"regexp"

	"tlsgate/internal/clientauth"
)

// Some servers let every handshake complete and refuse the client certificate in HTTP:
// tlsgate with refusal: http (a 403 page naming its reason code), nginx with
// ssl_verify_client (400 "No required SSL certificate was sent" or "The SSL
// certificate error"). Probe reads the page, so such a refusal is not taken for a
// successful mutual handshake.

// refusedOverHTTP is a refusal of the client certificate in an HTTP response.
type refusedOverHTTP struct {
	status int
	server string            // who refused, as the page shows it
	reason clientauth.Reason // the server's own reason code; "" when the page gives none
	cause  string
}

func (e *refusedOverHTTP) Error() string {
	return fmt.Sprintf("HTTP %d from %s: %s", e.status, e.server, e.cause)
}

var tlsgateReason = regexp.MustCompile(`\(tlsgate reason code: ([a-z_]+)\)`)

// httpRefusal recognises a refusal page; nil when the response is not one.
func httpRefusal(status int, body []byte) *refusedOverHTTP {
	if m := tlsgateReason.FindSubmatch(body); m != nil && status == 403 {
		r := clientauth.Reason(m[1])
		return &refusedOverHTTP{status: status, server: "tlsgate (refusal: http)", reason: r, cause: r.Text()}
	}
	if status != 400 {
		return nil
	}
	switch {
	case bytes.Contains(body, []byte("No required SSL certificate was sent")):
		return &refusedOverHTTP{status: status, server: "nginx (ssl_verify_client)", reason: clientauth.NoClientCert, cause: clientauth.NoClientCert.Text()}
	case bytes.Contains(body, []byte("The SSL certificate error")):
		return &refusedOverHTTP{status: status, server: "nginx (ssl_verify_client)", cause: "the server rejected the client certificate after checking it (its error log has the OpenSSL verify code)"}
	}
	return nil
}

// diagnosis is the cause and fix of an HTTP refusal.
func (e *refusedOverHTTP) diagnosis() Diagnosis {
	d := Diagnosis{Cause: fmt.Sprintf("%s refused the client certificate in HTTP (status %d): %s", e.server, e.status, e.cause)}
	if e.reason != "" {
		d.Fix = e.reason.Fix()
	} else {
		d.Fix = "see the checks of the client certificate; the server's log names the reason"
	}
	return d
}
