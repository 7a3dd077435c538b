package auth_test

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/auth"
)

func TestNewToken(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, kind := range []string{auth.KindPersonal, auth.KindCollector, auth.KindSession} {
		for range 100 {
			plain, hash := auth.NewToken(kind)
			require.True(t, strings.HasPrefix(plain, "xat_"+kind+"_"), plain)
			require.Len(t, plain, len("xat_"+kind+"_")+43) // 32 bytes, base64url
			require.Equal(t, kind, auth.TokenKind(plain))
			require.Len(t, hash, sha256.Size)
			require.Equal(t, hash, auth.HashToken(plain))
			require.False(t, seen[plain], "duplicate token")
			seen[plain] = true
		}
	}
}

func TestHashTokenStable(t *testing.T) {
	t.Parallel()
	plain := "xat_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	want := sha256.Sum256([]byte(plain))
	require.Equal(t, want[:], auth.HashToken(plain))
	require.True(t, bytes.Equal(auth.HashToken(plain), auth.HashToken(plain)))
	require.NotEqual(t, auth.HashToken(plain), auth.HashToken(plain+"x"))
}

func TestTokenKind(t *testing.T) {
	t.Parallel()
	good, _ := auth.NewToken(auth.KindCollector)
	secret := strings.TrimPrefix(good, "xat_col_")
	tests := []struct {
		plain string
		want  string
	}{
		{good, auth.KindCollector},
		{"xat_ses_" + secret, auth.KindSession},
		{"", ""},
		{"xat_", ""},
		{"xat_pat", ""},
		{"xat_pat_", ""},
		{"xat_pat_" + secret[1:], ""},        // short
		{"xat_pat_" + secret + "A", ""},      // long
		{"xat_PAT_" + secret, ""},            // kind not lowercase
		{"xat__" + secret, ""},               // no kind
		{"xyz_pat_" + secret, ""},            // wrong prefix
		{"Bearer xat_pat_" + secret, ""},     // not trimmed
		{"xat_pat_" + secret[:42] + "*", ""}, // not base64url
		{"xat_pat_" + secret[:42] + "+", ""}, // standard, not URL alphabet
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, auth.TokenKind(tt.plain), tt.plain)
	}
}

func TestNewTokenBadKindPanics(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"", "PAT", "p_t", "toolongkind"} {
		require.Panics(t, func() { auth.NewToken(kind) }, kind)
	}
}
