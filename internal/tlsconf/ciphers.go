package tlsconf

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// suite describes a cipher suite Go implements by its OpenSSL name and the
// attributes OpenSSL cipher-list expressions select on (EECDH+AES128, ...).
type suite struct {
	openssl string
	id      uint16
	attrs   []string
}

// suites lists the TLS 1.0-1.2 suites Go implements. TLS 1.3 suites are not
// configurable in Go (they are always on with TLS 1.3).
var suites = []suite{
	{"ECDHE-ECDSA-AES128-GCM-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, []string{"ECDHE", "ECDSA", "AES128", "AESGCM", "SHA256", "HIGH"}},
	{"ECDHE-RSA-AES128-GCM-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, []string{"ECDHE", "RSA", "AES128", "AESGCM", "SHA256", "HIGH"}},
	{"ECDHE-ECDSA-AES256-GCM-SHA384", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, []string{"ECDHE", "ECDSA", "AES256", "AESGCM", "SHA384", "HIGH"}},
	{"ECDHE-RSA-AES256-GCM-SHA384", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, []string{"ECDHE", "RSA", "AES256", "AESGCM", "SHA384", "HIGH"}},
	{"ECDHE-ECDSA-CHACHA20-POLY1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, []string{"ECDHE", "ECDSA", "CHACHA20", "SHA256", "HIGH"}},
	{"ECDHE-RSA-CHACHA20-POLY1305", tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, []string{"ECDHE", "RSA", "CHACHA20", "SHA256", "HIGH"}},
	{"ECDHE-ECDSA-AES128-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, []string{"ECDHE", "ECDSA", "AES128", "SHA1", "HIGH"}},
	{"ECDHE-RSA-AES128-SHA", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, []string{"ECDHE", "RSA", "AES128", "SHA1", "HIGH"}},
	{"ECDHE-ECDSA-AES256-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, []string{"ECDHE", "ECDSA", "AES256", "SHA1", "HIGH"}},
	{"ECDHE-RSA-AES256-SHA", tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, []string{"ECDHE", "RSA", "AES256", "SHA1", "HIGH"}},
}

// intermediate is Mozilla's intermediate profile for TLS 1.2 (Server Side
// TLS 5.x), as far as Go implements it: ECDHE key exchange, ECDSA or RSA
// certificates, AES-GCM or ChaCha20-Poly1305. The profile's DHE-RSA suites
// Go does not implement; its TLS 1.3 suites are Go's, always on. The
// modern profile is TLS 1.3 only, so the same list serves it.
var intermediate = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuites returns the TLS 1.0-1.2 suites for tls_compatibility_level
// level and the OpenSSL list tls_ciphers ("" for the level's profile).
// intermediate and modern allow only Mozilla's intermediate suites: others
// that tls_ciphers selects are left out, with a warning for those it names
// one by one (an expression such as Flowgger's example "EECDH+AES128"
// selects CBC suites with SHA-1 too, which are dropped quietly, as
// OpenSSL's security level drops suites); old allows every suite in suites.
func CipherSuites(level, list string) (ids []uint16, warnings []string, err error) {
	if _, err := MinVersion(level); err != nil {
		return nil, nil, err
	}
	allowed := intermediate
	if strings.EqualFold(level, "old") {
		allowed = make([]uint16, len(suites))
		for i, s := range suites {
			allowed[i] = s.id
		}
	}
	if list == "" {
		return slices.Clone(allowed), nil, nil
	}
	chosen, named, warnings, err := parseCiphers(list)
	if err != nil {
		return nil, warnings, err
	}
	var left []string
	for _, id := range chosen {
		if slices.Contains(allowed, id) {
			ids = append(ids, id)
		} else if named[id] {
			left = append(left, opensslName(id))
		}
	}
	if len(left) > 0 {
		warnings = append(warnings, fmt.Sprintf("%s not enabled: not in Mozilla's intermediate profile (CBC with SHA-1); tls_compatibility_level = \"old\" allows them",
			strings.Join(left, ", ")))
	}
	if len(ids) == 0 {
		if level == "" {
			level = "intermediate"
		}
		return nil, warnings, fmt.Errorf("no cipher suite of tls_compatibility_level %q is selected by %q (allowed: %s)", level, list, suiteNames(allowed))
	}
	return ids, warnings, nil
}

func opensslName(id uint16) string {
	for _, s := range suites {
		if s.id == id {
			return s.openssl
		}
	}
	return tls.CipherSuiteName(id)
}

func suiteNames(ids []uint16) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = opensslName(id)
	}
	return strings.Join(names, ", ")
}

// insecure lists suites Go implements but does not enable by default
// (RSA key exchange, CBC-SHA256, 3DES, RC4). flowgo never enables them:
// a name that selects one is reported in a warning.
var insecure = map[string]bool{
	"ECDHE-ECDSA-AES128-SHA256": true, "ECDHE-RSA-AES128-SHA256": true,
	"AES128-GCM-SHA256": true, "AES256-GCM-SHA384": true, "AES128-SHA256": true,
	"AES128-SHA": true, "AES256-SHA": true, "DES-CBC3-SHA": true, "ECDHE-RSA-DES-CBC3-SHA": true,
	"ECDHE-ECDSA-RC4-SHA": true, "ECDHE-RSA-RC4-SHA": true, "RC4-SHA": true,
}

// attribute aliases used in OpenSSL cipher strings.
var attrAlias = map[string]string{
	"EECDH": "ECDHE", "kEECDH": "ECDHE", "kECDHE": "ECDHE", "ECDH": "ECDHE", "AECDH": "",
	"aECDSA": "ECDSA", "ECDSA": "ECDSA", "aRSA": "RSA", "kRSA": "kRSA", "RSA": "kRSA",
	"AES": "AES", "AESGCM": "AESGCM", "AES128": "AES128", "AES256": "AES256", "CHACHA20": "CHACHA20",
	"SHA": "SHA1", "SHA1": "SHA1", "SHA256": "SHA256", "SHA384": "SHA384",
	"HIGH": "HIGH", "ALL": "ALL", "DEFAULT": "ALL", "COMPLEMENTOFDEFAULT": "", "TLSv1.2": "ALL", "TLSv1": "ALL",
}

func (s suite) has(attr string) bool {
	switch attr {
	case "ALL":
		return true
	case "AES":
		return slices.Contains(s.attrs, "AES128") || slices.Contains(s.attrs, "AES256")
	case "kRSA":
		return false // no RSA key exchange suite is enabled
	}
	return slices.Contains(s.attrs, attr)
}

// ParseCiphers turns an OpenSSL cipher list ("ECDHE-RSA-AES128-GCM-SHA256:
// EECDH+AES256:!MD5;") into Go suite IDs, in the order given. Separators are
// ':', ',', ';' and spaces. Exclusions ("!x", "-x") remove suites; "+x"
// reordering and "@STRENGTH" are accepted and ignored. Names Go does not
// implement, and insecure suites, are reported in warnings. An empty result
// is an error: nothing could be negotiated below TLS 1.3.
func ParseCiphers(list string) (ids []uint16, warnings []string, err error) {
	ids, _, warnings, err = parseCiphers(list)
	return ids, warnings, err
}

// parseCiphers is ParseCiphers, also telling which suites the list names
// one by one rather than through an expression (EECDH+AES128).
func parseCiphers(list string) (ids []uint16, named map[uint16]bool, warnings []string, err error) {
	named = map[uint16]bool{}
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ';' || r == ' ' })
	excluded := map[uint16]bool{}
	var chosen []uint16
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f, "@"):
			continue
		case strings.HasPrefix(f, "!") || strings.HasPrefix(f, "-"):
			for _, s := range match(f[1:]) {
				excluded[s.id] = true
			}
			continue
		case strings.HasPrefix(f, "+"):
			continue
		}
		m := match(f)
		if len(m) == 1 && m[0].openssl == f {
			named[m[0].id] = true
		}
		if len(m) == 0 {
			if insecure[f] {
				warnings = append(warnings, fmt.Sprintf("cipher %s is insecure and is not enabled", f))
			} else if !isKnownExpression(f) {
				warnings = append(warnings, fmt.Sprintf("cipher %s is unknown or not implemented by Go's TLS; ignored", f))
			}
			continue
		}
		for _, s := range m {
			if !slices.Contains(chosen, s.id) {
				chosen = append(chosen, s.id)
			}
		}
	}
	for _, id := range chosen {
		if !excluded[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, named, warnings, fmt.Errorf("no cipher suite that Go implements is selected by %q (known: %s)", list, knownNames())
	}
	return ids, named, warnings, nil
}

// isKnownExpression reports whether f only names attributes that select
// nothing Go offers (such as "aNULL" or "RC4"), which needs no warning.
func isKnownExpression(f string) bool {
	for _, part := range strings.Split(f, "+") {
		switch part {
		case "aNULL", "eNULL", "NULL", "EXPORT", "EXP", "DES", "3DES", "RC4", "MD5", "PSK", "SRP", "aECDH", "ADH", "AECDH",
			"EDH", "DHE", "kEDH", "kDHE", "DSS", "aDSS", "CAMELLIA", "SEED", "IDEA", "KRB5", "LOW", "MEDIUM", "RSA", "kRSA", "SHA256", "SHA384":
		default:
			if _, ok := attrAlias[part]; !ok {
				return false
			}
		}
	}
	return true
}

// match returns the suites a single name or "+"-joined expression selects.
func match(expr string) []suite {
	for _, s := range suites {
		if s.openssl == expr {
			return []suite{s}
		}
	}
	parts := strings.Split(expr, "+")
	var out []suite
	for _, s := range suites {
		ok := true
		for _, p := range parts {
			a, known := attrAlias[p]
			if !known || a == "" || !s.has(a) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func knownNames() string {
	names := make([]string, len(suites))
	for i, s := range suites {
		names[i] = s.openssl
	}
	return strings.Join(names, ", ")
}

// MinVersion maps tls_compatibility_level to the lowest TLS version
// accepted: intermediate (and Flowgger's default and any) is TLS 1.2, as in
// Mozilla's current intermediate profile; modern is TLS 1.3; old is TLS 1.0
// for devices that cannot do better.
func MinVersion(level string) (uint16, error) {
	switch strings.ToLower(level) {
	case "", "default", "any", "intermediate":
		return tls.VersionTLS12, nil
	case "modern":
		return tls.VersionTLS13, nil
	case "old":
		return tls.VersionTLS10, nil
	}
	return 0, fmt.Errorf("%q unknown: want intermediate (TLS 1.2+), modern (TLS 1.3) or old (TLS 1.0+)", level)
}
