package auth_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
)

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := auth.TestHasher

	encoded, err := h.Hash("correct horse battery")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$"), encoded)

	ok, err := h.Verify(encoded, "correct horse battery")
	require.NoError(t, err)
	require.True(t, ok)

	ok, err = h.Verify(encoded, "correct horse battery!")
	require.NoError(t, err)
	require.False(t, ok)

	ok, err = h.Verify(encoded, "")
	require.NoError(t, err)
	require.False(t, ok)

	// Same password, fresh salt: a different string that verifies too.
	again, err := h.Hash("correct horse battery")
	require.NoError(t, err)
	require.NotEqual(t, encoded, again)
}

// TestVerifyReadsParameters verifies with a Hasher of other parameters:
// the cost comes from the stored string, so parameters can change without
// invalidating stored passwords.
func TestVerifyReadsParameters(t *testing.T) {
	t.Parallel()
	old := auth.Hasher{Memory: 128, Time: 3, Threads: 2}
	encoded, err := old.Hash("a long enough password")
	require.NoError(t, err)
	require.Contains(t, encoded, "$m=128,t=3,p=2$")

	ok, err := auth.TestHasher.Verify(encoded, "a long enough password")
	require.NoError(t, err)
	require.True(t, ok)

	require.True(t, auth.TestHasher.NeedsRehash(encoded))
	require.False(t, old.NeedsRehash(encoded))
	require.True(t, old.NeedsRehash("garbage"))
}

func TestHasherZeroValueUsesDefaults(t *testing.T) {
	t.Parallel()
	require.False(t, auth.Hasher{}.NeedsRehash(mustHash(t, auth.DefaultHasher, "x")))
}

func TestHashRejectsBadParameters(t *testing.T) {
	t.Parallel()
	_, err := auth.Hasher{Memory: 8, Threads: 4}.Hash("x") // under 8 KiB per lane
	require.Error(t, err)
	_, err = auth.Hasher{Time: 1000}.Hash("x")
	require.Error(t, err)
}

func TestVerifyTampered(t *testing.T) {
	t.Parallel()
	good := mustHash(t, auth.TestHasher, "the password")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]

	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", "the password"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"missing part", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"extra part", good + "$x"},
		{"params order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"params sign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{"params trailing", "$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key},
		{"params leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"zero passes", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"too many lanes", "$argon2id$v=19$m=64000,t=1,p=256$" + salt + "$" + key},
		{"memory bomb", "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key},
		{"time bomb", "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key},
		{"memory under lanes", "$argon2id$v=19$m=8,t=1,p=4$" + salt + "$" + key},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"salt short", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"key short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"key not base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := auth.TestHasher.Verify(tt.encoded, "the password")
			require.ErrorIs(t, err, auth.ErrInvalidHash)
			require.False(t, ok)
		})
	}

	// A well-formed string whose key was altered is a plain mismatch.
	flipped := []byte(key)
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	ok, err := auth.TestHasher.Verify("$argon2id$v=19$m=64,t=1,p=1$"+salt+"$"+string(flipped), "the password")
	require.NoError(t, err)
	require.False(t, ok)

	// So is one whose parameters were altered within bounds.
	ok, err = auth.TestHasher.Verify("$argon2id$v=19$m=64,t=2,p=1$"+salt+"$"+key, "the password")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"empty", "", auth.ErrPasswordTooShort},
		{"nine", "123456789", auth.ErrPasswordTooShort},
		{"ten", "1234567890", nil},
		{"ten runes, more bytes", "ééééééééé", auth.ErrPasswordTooShort},
		{"ten multibyte runes", "éééééééééé", nil},
		{"at the byte limit", strings.Repeat("a", auth.MaxPasswordBytes), nil},
		{"over the byte limit", strings.Repeat("a", auth.MaxPasswordBytes+1), auth.ErrPasswordTooLong},
		{"invalid UTF-8", "0123456789\xff", auth.ErrPasswordEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.ValidatePassword(tt.password)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
	require.Equal(t, "password must be at least 10 characters", auth.ErrPasswordTooShort.Error())
}

func mustHash(t *testing.T, h auth.Hasher, password string) string {
	t.Helper()
	s, err := h.Hash(password)
	require.NoError(t, err)
	return s
}

// BenchmarkDefaultHasher measures one production-cost hash, the price of a
// login.
func BenchmarkDefaultHasher(b *testing.B) {
	for b.Loop() {
		if _, err := auth.DefaultHasher.Hash("correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}
