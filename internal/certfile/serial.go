package certfile

import (
	"encoding/hex"
	"math/big"
	"strings"
)

// SerialHex prints a certificate serial number as `openssl x509 -serial`, nginx's
// $ssl_client_serial and HAProxy's ssl_c_serial,hex do: upper-case hex of the number's
// bytes, so always an even number of digits, with a leading zero kept ("0A1B…", not
// "A1B…"); zero is "00". A serial copied from any of them greps in tlsgate's logs and
// headers. (Negative serials, which RFC 5280 forbids, are printed by their magnitude.)
func SerialHex(s *big.Int) string {
	if s == nil {
		return ""
	}
	b := s.Bytes()
	if len(b) == 0 {
		return "00"
	}
	return strings.ToUpper(hex.EncodeToString(b))
}
