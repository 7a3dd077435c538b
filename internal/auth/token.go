package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Token kinds, the middle part of a token's prefix: xat_<kind>_<secret>.
// The prefix tells a reader (and secret scanners) what a leaked string is;
// it carries no authority, since the lookup is by the whole token's hash.
const (
	KindPersonal  = "pat" // personal API token, bound to one partner
	KindCollector = "col" // upload-only token of one collector
	KindSession   = "ses" // session id in the session cookie
)

const (
	tokenPrefix = "xat_"
	secretBytes = 32
)

// secretLen is the length of the encoded secret part of a token.
var secretLen = base64.RawURLEncoding.EncodedLen(secretBytes)

// NewToken returns a new random token of the given kind, as its plain text
// (shown once, never stored) and the hash to store (see HashToken). The
// secret is 32 bytes from crypto/rand, base64url-encoded. kind must be a
// short lowercase word such as KindPersonal; anything else is a programming
// error and panics.
func NewToken(kind string) (plain string, hash []byte) {
	if !validKind(kind) {
		panic("auth: invalid token kind " + kind)
	}
	secret := make([]byte, secretBytes)
	rand.Read(secret) // never fails; the runtime aborts instead
	plain = tokenPrefix + kind + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return plain, HashToken(plain)
}

// HashToken returns the SHA-256 of a plain token, the form in which tokens
// are stored and looked up. A fast hash is right here, unlike for
// passwords: a token holds 256 random bits, so no guessing attack on a
// leaked hash can succeed however fast each guess is, while a slow hash
// would put a costly computation on every authenticated request and rule
// out looking the token up by its hash.
func HashToken(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

// TokenKind returns the kind of a well-formed token (KindPersonal,
// KindCollector, KindSession or another kind NewToken made), or "" when
// plain does not have a token's shape. Callers use it to refuse the wrong
// kind of credential, and malformed ones, before any lookup.
func TokenKind(plain string) string {
	rest, ok := strings.CutPrefix(plain, tokenPrefix)
	if !ok {
		return ""
	}
	kind, secret, ok := strings.Cut(rest, "_")
	if !ok || !validKind(kind) || len(secret) != secretLen {
		return ""
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return ""
	}
	return kind
}

// validKind accepts one to eight lowercase ASCII letters.
func validKind(kind string) bool {
	if kind == "" || len(kind) > 8 {
		return false
	}
	for i := 0; i < len(kind); i++ {
		if kind[i] < 'a' || kind[i] > 'z' {
			return false
		}
	}
	return true
}
