package clientauth

import "crypto/x509"

// Verdict is the outcome of client authentication on one connection.
type Verdict struct {
	// Reason is OK when the client certificate was verified (or none was asked for).
	Reason Reason
	// Chain is the client's verified chain, leaf first; nil unless Reason is OK and a
	// certificate was sent.
	Chain []*x509.Certificate
	// Presented is the leaf the client sent, verified or not; nil when none was sent.
	Presented *x509.Certificate
	// Grace: verified only thanks to the expiry grace; the leaf is past its NotAfter.
	Grace bool
	// Audit is what the listener's audit (ssl.audit) would decide: "" when none ran,
	// else "ok" or a reason code (Reason.Label).
	Audit string
}

// Header is the X-Client-Verify value: SUCCESS, NONE or FAILED:<reason>.
func (v Verdict) Header() string {
	switch {
	case v.Reason == OK && v.Chain != nil:
		return "SUCCESS"
	case v.Reason == OK || v.Reason == NoClientCert:
		return "NONE"
	}
	return "FAILED:" + string(v.Reason)
}

// Verified reports whether the client presented a certificate that passed every check.
func (v Verdict) Verified() bool { return v.Reason == OK && v.Chain != nil }
