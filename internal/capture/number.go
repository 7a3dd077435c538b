package capture

import (
	"math"
	"strconv"
	"time"
)

// Bounds of metric values. Real readings stay far below maxMetric, and the
// cap keeps sums finite, so every Result can be encoded as JSON. Positive
// values below minMetric, which no collector measures, count as 0.
const (
	maxMetric = 1e18
	minMetric = 1e-9
)

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
	1e21, 1e22,
}

// parseMetric parses one metric value. It accepts what strconv.ParseFloat
// accepts, except NaN, infinities, negative values and values above
// maxMetric.
func parseMetric(b []byte) (float64, fault) {
	b = trimSpace(b)
	v, ok := parseDecimal(b)
	if !ok {
		var err error
		v, err = strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fault{msg: "invalid number", val: b}
		}
	}

	switch {
	case v < 0:
		return 0, fault{msg: "negative value", val: b}
	case v > maxMetric:
		return 0, fault{msg: "value out of range", val: b}
	}
	return clampSmall(v), fault{}
}

// clampSmall turns values below minMetric into 0, which also keeps ratios
// of sums finite.
func clampSmall(v float64) float64 {
	if v < minMetric {
		return 0
	}
	return v
}

// parseDecimal is the fast path of parseMetric: it parses b if it is a
// plain decimal as scanDecimal takes it, and reports false otherwise.
func parseDecimal(b []byte) (float64, bool) {
	v, n, ok := scanDecimal(b)
	return v, ok && n == len(b)
}

// scanDecimal parses the plain decimal at the start of b, such as "12" or
// "0.375", and returns it with the number of bytes it spans. It reports
// false when b does not start with one or when it has more than 19 digits
// or a mantissa of 2^53 or more. Those limits make one division by an
// exact power of ten round correctly, so the result equals
// strconv.ParseFloat's.
func scanDecimal(b []byte) (float64, int, bool) {
	mant, i := scanDigits(b, 0, 0)
	digits := i
	scale := 0
	if i < len(b) && b[i] == '.' {
		mant, scale = scanDigits(b[i+1:], mant, 0)
		i += 1 + scale
		digits += scale
	}

	if digits == 0 || digits > 19 || mant >= 1<<53 || scale >= len(pow10) {
		return 0, 0, false
	}
	return float64(mant) / pow10[scale], i, true
}

// scanDigits appends the leading decimal digits of b[i:] to mant and
// returns it with the index past them. It takes two digits per step, which
// halves the chain of dependent multiplications; the digit count is capped
// by the caller.
func scanDigits(b []byte, mant uint64, i int) (uint64, int) {
	for i+1 < len(b) {
		d0, d1 := b[i]-'0', b[i+1]-'0'
		if d0 > 9 || d1 > 9 {
			break
		}
		mant = mant*100 + uint64(d0)*10 + uint64(d1)
		i += 2
	}
	if i < len(b) && b[i]-'0' < 10 {
		mant = mant*10 + uint64(b[i]-'0')
		i++
	}
	return mant, i
}

// parseTimestamp parses RFC 3339 text or Unix seconds (an integer or a
// decimal fraction) into Unix nanoseconds.
func parseTimestamp(b []byte) (int64, fault) {
	b = trimSpace(b)
	switch {
	case len(b) == 0:
		return 0, fault{msg: "missing"}
	case len(b) >= 20 && b[4] == '-':
		return parseRFC3339(b)
	default:
		return parseUnix(b)
	}
}

// parseUnix parses non-negative Unix seconds with an optional fraction.
// Digits past nanoseconds are dropped.
func parseUnix(b []byte) (int64, fault) {
	bad := fault{msg: "want RFC 3339 or Unix seconds, got", val: b}
	var sec, nsec int64
	i := 0
	for ; i < len(b) && b[i] != '.'; i++ {
		c := b[i] - '0'
		if c > 9 || i >= 18 {
			return 0, bad
		}
		sec = sec*10 + int64(c)
	}
	if i == 0 {
		return 0, bad
	}

	if i < len(b) {
		scale := int64(1e8)
		for _, c := range b[i+1:] {
			c -= '0'
			if c > 9 {
				return 0, bad
			}
			nsec += int64(c) * scale
			scale /= 10
		}
	}
	if sec > maxUnixSeconds {
		return 0, fault{msg: "out of range", val: b}
	}
	return sec*1e9 + nsec, fault{}
}

// maxUnixSeconds is the start of the year 2200; later timestamps would
// overflow nanoseconds soon after and are not plausible readings.
const maxUnixSeconds = 7258118400

// parseRFC3339 parses "2006-01-02T15:04:05[.999999999](Z|±07:00)". It
// accepts a lower-case t or z and a space instead of the T, as RFC 3339
// allows.
func parseRFC3339(b []byte) (int64, fault) {
	bad := fault{msg: "invalid RFC 3339 time", val: b}
	if b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, bad
	}
	if sep := b[10]; sep != 'T' && sep != 't' && sep != ' ' {
		return 0, bad
	}
	year, ok1 := digitsAt(b, 0, 4)
	month, ok2 := digitsAt(b, 5, 2)
	day, ok3 := digitsAt(b, 8, 2)
	hour, ok4 := digitsAt(b, 11, 2)
	minute, ok5 := digitsAt(b, 14, 2)
	second, ok6 := digitsAt(b, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, bad
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || second > 59 {
		return 0, bad
	}
	if year < 1900 || year >= 2200 {
		return 0, fault{msg: "out of range", val: b}
	}

	// Fraction of a second, then the zone.
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		i, scale := 1, int(1e8)
		for ; i < len(rest) && rest[i]-'0' < 10; i++ {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return 0, bad
		}
		rest = rest[i:]
	}
	offset, ok := parseZone(rest)
	if !ok {
		return 0, bad
	}

	t := time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC)
	return t.UnixNano() - int64(offset)*int64(time.Second), fault{}
}

// parseZone parses "Z" or "±hh:mm" into an offset east of UTC in seconds.
func parseZone(b []byte) (int, bool) {
	if len(b) == 1 && (b[0] == 'Z' || b[0] == 'z') {
		return 0, true
	}
	if len(b) != 6 || (b[0] != '+' && b[0] != '-') || b[3] != ':' {
		return 0, false
	}
	hh, ok1 := digitsAt(b, 1, 2)
	mm, ok2 := digitsAt(b, 4, 2)
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return 0, false
	}

	offset := hh*3600 + mm*60
	if b[0] == '-' {
		offset = -offset
	}
	return offset, true
}

// digitsAt reads n decimal digits of b starting at i.
func digitsAt(b []byte, i, n int) (int, bool) {
	v := 0
	for _, c := range b[i : i+n] {
		c -= '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int(c)
	}
	return v, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

// trimSpace trims ASCII spaces and tabs, the only padding collectors add.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
