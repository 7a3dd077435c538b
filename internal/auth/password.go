// Package auth holds XAT's credential primitives: password hashing and
// policy, random tokens and their hashes, and a rate limiter for login
// attempts. It does no I/O: storage lives in internal/postgres and the
// HTTP flow in internal/httpapi.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

const (
	// MinPasswordLen is the fewest characters (Unicode code points) a new
	// password may have.
	MinPasswordLen = 10

	// MaxPasswordBytes is the most bytes a new password may have. The
	// limit keeps request bodies and hashing input bounded; no one types
	// more.
	MaxPasswordBytes = 1024
)

var (
	// ErrPasswordTooShort is returned by ValidatePassword for a password
	// shorter than MinPasswordLen characters.
	ErrPasswordTooShort = fmt.Errorf("password must be at least %d characters", MinPasswordLen)

	// ErrPasswordTooLong is returned by ValidatePassword for a password
	// longer than MaxPasswordBytes bytes.
	ErrPasswordTooLong = fmt.Errorf("password must be at most %d bytes", MaxPasswordBytes)

	// ErrPasswordEncoding is returned by ValidatePassword for a password
	// that is not valid UTF-8.
	ErrPasswordEncoding = errors.New("password must be valid UTF-8 text")

	// ErrInvalidHash is returned by Verify when the encoded hash is not an
	// argon2id string this package can read, or names parameters outside
	// the accepted bounds.
	ErrInvalidHash = errors.New("invalid password hash encoding")
)

// ValidatePassword checks a new password against the policy: valid UTF-8,
// at least MinPasswordLen characters and at most MaxPasswordBytes bytes. It
// returns ErrPasswordEncoding, ErrPasswordTooShort or ErrPasswordTooLong,
// whose messages can be shown to the user as they are. Existing passwords
// are never re-checked: the policy applies when a password is set.
func ValidatePassword(password string) error {
	switch {
	case len(password) > MaxPasswordBytes:
		return ErrPasswordTooLong
	case !utf8.ValidString(password):
		return ErrPasswordEncoding
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return ErrPasswordTooShort
	}
	return nil
}

// Hasher hashes passwords with argon2id. Its fields are the cost
// parameters written into every hash it makes; Verify reads them back from
// the hash, so they can change at any time without invalidating stored
// passwords (see NeedsRehash). A zero field takes DefaultHasher's value.
// A Hasher is a value and safe for concurrent use.
type Hasher struct {
	Memory  uint32 // memory cost in KiB
	Time    uint32 // number of passes over the memory
	Threads uint8  // lanes computed in parallel
}

// DefaultHasher is the production cost: 64 MiB, two passes, two lanes.
// That is the memory of RFC 9106's second recommendation, with the lanes
// matched to a 2-core server and two passes rather than three to keep a
// login near 120 ms there (measured on both cores of a 2-core Xeon VM).
// Each hash in flight holds 64 MiB and both cores, so the login handler
// must bound how many run at once; the login rate limiter bounds how often.
var DefaultHasher = Hasher{Memory: 64 * 1024, Time: 2, Threads: 2}

// TestHasher is a cheap Hasher for tests: 64 KiB, one pass, one lane. It
// offers no protection and must never hash real passwords.
var TestHasher = Hasher{Memory: 64, Time: 1, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32

	// Bounds on parameters read from a stored hash: a tampered row must
	// not make Verify allocate gigabytes or spin for minutes.
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// b64 is the encoding of the PHC string format: standard alphabet without
// padding.
var b64 = base64.RawStdEncoding

func (h Hasher) withDefaults() Hasher {
	if h.Memory == 0 {
		h.Memory = DefaultHasher.Memory
	}
	if h.Time == 0 {
		h.Time = DefaultHasher.Time
	}
	if h.Threads == 0 {
		h.Threads = DefaultHasher.Threads
	}
	return h
}

// Hash returns password hashed with a fresh random salt, encoded as a PHC
// string: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>. It
// fails only when the parameters are unusable (memory below 8 KiB per
// lane, or above the bounds Verify accepts).
func (h Hasher) Hash(password string) (string, error) {
	h = h.withDefaults()
	if err := checkParams(h.Memory, h.Time, h.Threads); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails; the runtime aborts instead
	key := argon2.IDKey([]byte(password), salt, h.Time, h.Memory, h.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.Memory, h.Time, h.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, a hash made by Hash
// with any parameters. The comparison takes constant time. A mismatch is
// (false, nil); an encoding that cannot be read, or that asks for more than
// 1 GiB or 64 passes, is (false, ErrInvalidHash). The receiver's own
// parameters play no part.
func (h Hasher) Verify(encoded, password string) (bool, error) {
	p, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than
// h's (or cannot be read), so that a caller holding the plain password
// after a successful login can store a fresh hash.
func (h Hasher) NeedsRehash(encoded string) bool {
	h = h.withDefaults()
	p, err := parseHash(encoded)
	return err != nil || p.memory != h.Memory || p.time != h.Time ||
		p.threads != h.Threads || len(p.key) != keyLen || len(p.salt) != saltLen
}

type params struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseHash reads a PHC string made by Hash.
func parseHash(encoded string) (params, error) {
	var p params
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, fmt.Errorf("%w: not an argon2id hash", ErrInvalidHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: unsupported version %q", ErrInvalidHash, parts[2])
	}

	var m, t, th uint32
	_, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th)
	// Re-encoding rejects what Sscanf tolerates: signs, leading zeros,
	// trailing text.
	if err != nil || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] || th > 255 {
		return p, fmt.Errorf("%w: malformed parameters %q", ErrInvalidHash, parts[3])
	}
	p.memory, p.time, p.threads = m, t, uint8(th)
	if err := checkParams(p.memory, p.time, p.threads); err != nil {
		return p, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}

	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return p, fmt.Errorf("%w: bad salt", ErrInvalidHash)
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return p, fmt.Errorf("%w: bad key", ErrInvalidHash)
	}
	return p, nil
}

// checkParams applies the bounds of argon2 itself (8 KiB per lane) and
// ours.
func checkParams(memory, time uint32, threads uint8) error {
	switch {
	case threads == 0:
		return errors.New("no lanes")
	case time == 0 || time > maxTime:
		return fmt.Errorf("%d passes (want 1 to %d)", time, maxTime)
	case memory < 8*uint32(threads) || memory > maxMemory:
		return fmt.Errorf("%d KiB of memory (want %d to %d)", memory, 8*uint32(threads), maxMemory)
	}
	return nil
}
