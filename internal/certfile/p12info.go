package certfile

import (
	"encoding/asn1"
	"errors"
	"slices"
	"strings"
)

// PKCS#12 files differ in how they are encrypted, and importers differ in what they
// read: OpenSSL 3 reads RC2-40 only with -legacy, while older Windows and the macOS
// Keychain refuse AES/PBKDF2 files (OpenSSL 3's and go-pkcs12's modern default).
// P12Encryption names the algorithms of a file so that inspect can say which it is.

// P12Info is how a PKCS#12 file is encrypted and authenticated.
type P12Info struct {
	Certs  string `json:"certificates,omitempty"` // the encryption of the certificate bag(s); "none" when in clear
	Key    string `json:"key,omitempty"`          // the encryption of the shrouded key bag
	MAC    string `json:"mac,omitempty"`          // the MAC's digest; "" when there is none
	Legacy bool   `json:"legacy"`                 // a pre-PBES2 algorithm or a SHA-1 MAC is used
}

// String is one line: the algorithms and what they mean for importing the file.
func (p P12Info) String() string {
	var parts []string
	if p.Certs != "" {
		parts = append(parts, "certificates "+p.Certs)
	}
	if p.Key != "" {
		parts = append(parts, "key "+p.Key)
	}
	if p.MAC != "" {
		parts = append(parts, "MAC "+p.MAC)
	}
	s := strings.Join(parts, ", ")
	if p.Legacy {
		if strings.Contains(s, "RC2") {
			return s + ": legacy (old Windows and macOS import it; OpenSSL 3 reads RC2 only with -legacy)"
		}
		return s + ": legacy (old Windows and macOS import it; prefer the modern form where it is read)"
	}
	return s + ": modern (OpenSSL 3, browsers, current Windows; older Windows and the macOS Keychain may refuse it: export with --legacy for those)"
}

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKey   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// p12Names are the algorithms PKCS#12 files use, by OID.
var p12Names = map[string]string{
	"1.2.840.113549.1.12.1.1": "RC4-128/SHA-1", "1.2.840.113549.1.12.1.2": "RC4-40/SHA-1",
	"1.2.840.113549.1.12.1.3": "3DES/SHA-1", "1.2.840.113549.1.12.1.4": "2DES/SHA-1",
	"1.2.840.113549.1.12.1.5": "RC2-128/SHA-1", "1.2.840.113549.1.12.1.6": "RC2-40/SHA-1",
	"2.16.840.1.101.3.4.1.2": "AES-128-CBC", "2.16.840.1.101.3.4.1.22": "AES-192-CBC",
	"2.16.840.1.101.3.4.1.42": "AES-256-CBC", "1.2.840.113549.3.7": "3DES-CBC",
	"1.2.840.113549.2.7": "HMAC-SHA1", "1.2.840.113549.2.9": "HMAC-SHA256", "1.2.840.113549.2.11": "HMAC-SHA512",
	"1.3.14.3.2.26": "SHA-1", "2.16.840.1.101.3.4.2.1": "SHA-256", "2.16.840.1.101.3.4.2.2": "SHA-384", "2.16.840.1.101.3.4.2.3": "SHA-512",
}

type algID struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type pfx struct {
	Version  int
	AuthSafe contentInfo
	MacData  struct {
		Mac struct {
			Algorithm algID
			Digest    []byte
		}
		Salt       []byte
		Iterations int `asn1:"optional,default:1"`
	} `asn1:"optional"`
}

type encryptedData struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   algID
		Content     asn1.RawValue `asn1:"tag:0,optional"`
	}
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"tag:0,explicit"`
	Attributes asn1.RawValue `asn1:"optional"`
}

// algName names an encryption AlgorithmIdentifier; PBES2 by its cipher and PRF.
func algName(a algID) (name string, legacy bool) {
	if !a.Algorithm.Equal(oidPBES2) {
		if n, ok := p12Names[a.Algorithm.String()]; ok {
			return n, true
		}
		return a.Algorithm.String(), true
	}
	var params struct {
		KDF    algID
		Scheme algID
	}
	if _, err := asn1.Unmarshal(a.Parameters.FullBytes, &params); err != nil {
		return "PBES2", false
	}
	cipher := p12Names[params.Scheme.Algorithm.String()]
	if cipher == "" {
		cipher = params.Scheme.Algorithm.String()
	}
	prf := "HMAC-SHA1" // PBKDF2's default PRF
	if params.KDF.Algorithm.Equal(oidPBKDF2) {
		var kdf struct {
			Salt       asn1.RawValue
			Iterations int
			KeyLength  int   `asn1:"optional"`
			PRF        algID `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err == nil && len(kdf.PRF.Algorithm) > 0 {
			if n, ok := p12Names[kdf.PRF.Algorithm.String()]; ok {
				prf = n
			}
		}
	}
	return cipher + "/PBKDF2-" + prf, false
}

// P12Encryption reads how a PKCS#12 file is encrypted; no password is needed.
func P12Encryption(data []byte) (P12Info, error) {
	var info P12Info
	var p pfx
	if _, err := asn1.Unmarshal(data, &p); err != nil {
		return info, err
	}
	if !p.AuthSafe.ContentType.Equal(oidData) {
		return info, errors.New("PKCS#12 with public-key integrity: not read")
	}
	var safe []byte
	if _, err := asn1.Unmarshal(p.AuthSafe.Content.Bytes, &safe); err != nil {
		return info, err
	}
	var cis []contentInfo
	if _, err := asn1.Unmarshal(safe, &cis); err != nil {
		return info, err
	}
	var certAlgs, keyAlgs []string
	addAlg := func(to *[]string, a algID) {
		n, legacy := algName(a)
		info.Legacy = info.Legacy || legacy
		if !slices.Contains(*to, n) {
			*to = append(*to, n)
		}
	}
	for _, ci := range cis {
		switch {
		case ci.ContentType.Equal(oidEncryptedData):
			var ed encryptedData
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
				return info, err
			}
			addAlg(&certAlgs, ed.Info.Algorithm)
		case ci.ContentType.Equal(oidData):
			var raw []byte
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &raw); err != nil {
				return info, err
			}
			var bags []safeBag
			if _, err := asn1.Unmarshal(raw, &bags); err != nil {
				return info, err
			}
			clear := false
			for _, b := range bags {
				if !b.ID.Equal(oidShroudedKey) {
					clear = true
					continue
				}
				var epki struct {
					Algorithm algID
					Data      []byte
				}
				if _, err := asn1.Unmarshal(b.Value.Bytes, &epki); err != nil {
					return info, err
				}
				addAlg(&keyAlgs, epki.Algorithm)
			}
			if clear && !slices.Contains(certAlgs, "none") {
				certAlgs = append(certAlgs, "none")
			}
		}
	}
	info.Certs, info.Key = strings.Join(certAlgs, " + "), strings.Join(keyAlgs, " + ")
	if len(p.MacData.Mac.Algorithm.Algorithm) > 0 {
		info.MAC = p.MacData.Mac.Algorithm.Algorithm.String()
		if n, ok := p12Names[info.MAC]; ok {
			info.MAC = n
		}
		info.Legacy = info.Legacy || info.MAC == "SHA-1"
	}
	return info, nil
}
