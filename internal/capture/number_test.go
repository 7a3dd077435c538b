package capture

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTimestamp(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want string // RFC 3339 in UTC, or the fault message
		ok   bool
	}{
		{"2024-03-01T10:00:00Z", "2024-03-01T10:00:00Z", true},
		{"2024-02-29T23:59:59.999999999Z", "2024-02-29T23:59:59.999999999Z", true},
		{"2024-03-01T10:00:00.5+05:30", "2024-03-01T04:30:00.5Z", true},
		{"2024-03-01T10:00:00.1234567891Z", "2024-03-01T10:00:00.123456789Z", true},
		{"1709287200", "2024-03-01T10:00:00Z", true},
		{"1709287200.25", "2024-03-01T10:00:00.25Z", true},
		{"0", "1970-01-01T00:00:00Z", true},
		{"", "missing", false},
		{"2023-02-29T10:00:00Z", "invalid RFC 3339 time", false},
		{"2024-13-01T10:00:00Z", "invalid RFC 3339 time", false},
		{"2024-03-01T24:00:00Z", "invalid RFC 3339 time", false},
		{"2024-03-01T10:00:00", "want RFC 3339 or Unix seconds, got", false},
		{"2024-03-01T10:00:00.Z", "invalid RFC 3339 time", false},
		{"2024-03-01T10:00:00+5:30", "invalid RFC 3339 time", false},
		{"2024-03-01X10:00:00Z", "invalid RFC 3339 time", false},
		{"1850-03-01T10:00:00Z", "out of range", false},
		{"-1", "want RFC 3339 or Unix seconds, got", false},
		{"1.7e9", "want RFC 3339 or Unix seconds, got", false},
		{"17092872000000000000", "want RFC 3339 or Unix seconds, got", false},
		{"1709287200.x", "want RFC 3339 or Unix seconds, got", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			ns, f := parseTimestamp([]byte(tt.in))
			if !tt.ok {
				require.True(t, f.failed())
				require.Equal(t, tt.want, f.msg)
				return
			}
			require.False(t, f.failed(), f.msg)
			require.Equal(t, tt.want, time.Unix(0, ns).UTC().Format(time.RFC3339Nano))
		})
	}
}

func TestParseRFC3339MatchesTime(t *testing.T) {
	t.Parallel()

	// Random instants in all zones round-trip like time.Parse has them.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		sec := rng.Int64N(7e9)
		nsec := rng.Int64N(1e9)
		zone := time.FixedZone("", (rng.IntN(48)-24)*1800)
		s := time.Unix(sec, nsec).In(zone).Format(time.RFC3339Nano)

		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		got, f := parseTimestamp([]byte(s))
		require.False(t, f.failed(), "%s: %s", s, f.msg)
		require.Equal(t, want.UnixNano(), got, s)
	}
}

func TestParseMetric(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want float64
		msg  string
	}{
		{"0", 0, ""},
		{"12.5", 12.5, ""},
		{" 7 ", 7, ""},
		{".5", 0.5, ""},
		{"3.", 3, ""},
		{"1e3", 1000, ""},
		{"+4", 4, ""},
		{"-0", 0, ""},
		{"1e-12", 0, ""},
		{"1e18", 1e18, ""},
		{"1234567890123.4567890123", 1234567890123.4567890123, ""},
		{"-1", 0, "negative value"},
		{"1.1e18", 0, "value out of range"},
		{"Inf", 0, "invalid number"},
		{"nan", 0, "invalid number"},
		{"1,5", 0, "invalid number"},
		{"abc", 0, "invalid number"},
		{"", 0, "invalid number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			v, f := parseMetric([]byte(tt.in))
			require.Equal(t, tt.msg, f.msg)
			require.Equal(t, tt.want, v)
		})
	}
}

func TestParseDecimalMatchesStrconv(t *testing.T) {
	t.Parallel()

	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		v := rng.Float64() * float64(rng.Int64N(1e12))
		s := strconv.FormatFloat(v, 'f', rng.IntN(8), 64)
		want, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)

		got, f := parseMetric([]byte(s))
		require.False(t, f.failed(), s)
		require.Equal(t, clampSmall(want), got, s)
	}
}

func TestScanDecimalMatchesNaive(t *testing.T) {
	t.Parallel()

	// naive is the byte-at-a-time definition of scanDecimal.
	naive := func(b []byte) (float64, int, bool) {
		var mant uint64
		digits, scale, i := 0, 0, 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
		}
		if i < len(b) && b[i] == '.' {
			for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
				mant = mant*10 + uint64(b[i]-'0')
				digits++
				scale++
			}
		}
		if digits == 0 || digits > 19 || mant >= 1<<53 {
			return 0, 0, false
		}
		return float64(mant) / pow10[scale], i, true
	}

	const alphabet = "0123456789012345678901234567890123456789.,x/:\xff\x00 "
	rng := rand.New(rand.NewPCG(9, 10))
	for range 200000 {
		b := make([]byte, rng.IntN(32))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		wv, wn, wok := naive(b)
		gv, gn, gok := scanDecimal(b)
		require.Equal(t, wok, gok, "%q", b)
		if wok {
			require.Equal(t, wv, gv, "%q", b)
			require.Equal(t, wn, gn, "%q", b)
		}
	}
}
