package capture

import (
	"unicode/utf16"
	"unicode/utf8"
)

// jsonReader parses JSON Lines rows: one flat JSON object per line.
// Metrics may be numbers, numeric strings or null (missing); the timestamp
// a string or a number of Unix seconds; the host a string. Values of
// unknown keys may be anything, nested objects and arrays included. When a
// key repeats, the last value wins.
type jsonReader struct {
	// Scratch space for strings with escapes. The host keeps its own, as
	// it must outlive the parsing of later keys in the row.
	key, str, host []byte
}

// jsonScan walks one line.
type jsonScan struct {
	b []byte
	i int
}

func (sc *jsonScan) skipSpace() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.i++
		default:
			return
		}
	}
}

// peek returns the next byte that is not white space, or 0 at the end.
func (sc *jsonScan) peek() byte {
	sc.skipSpace()
	if sc.i >= len(sc.b) {
		return 0
	}
	return sc.b[sc.i]
}

// syntax reports a JSON error at the current position.
func (sc *jsonScan) syntax(want string) fault {
	if sc.i >= len(sc.b) {
		return fault{msg: "invalid JSON: want " + want + ", got end of line"}
	}
	return fault{
		msg:  "invalid JSON at column %d: want " + want + ", got",
		nums: []int{sc.i + 1},
		val:  sc.b[sc.i:min(len(sc.b), sc.i+16)],
	}
}

// row parses one line into s.
func (j *jsonReader) row(line []byte, s *sample) fault {
	s.reset()
	sc := &jsonScan{b: line}
	if sc.peek() != '{' {
		return sc.syntax("{")
	}
	sc.i++

	if sc.peek() == '}' {
		sc.i++
	} else {
		for {
			if f := j.member(sc, s); f.failed() {
				return f
			}
			c := sc.peek()
			sc.i++
			if c == '}' {
				break
			}
			if c != ',' {
				sc.i--
				return sc.syntax(`"," or "}"`)
			}
		}
	}

	if sc.peek() != 0 {
		return sc.syntax("end of line after the object")
	}
	return fault{}
}

// member parses one "key": value pair.
func (j *jsonReader) member(sc *jsonScan, s *sample) fault {
	if sc.peek() != '"' {
		return sc.syntax("a quoted key")
	}
	key, f := j.string(sc, &j.key)
	if f.failed() {
		return f
	}
	if sc.peek() != ':' {
		return sc.syntax(`":"`)
	}
	sc.i++

	k := fieldIndex(key)
	switch c := sc.peek(); {
	case c == '"':
		dst := &j.str
		if k == fieldHost {
			dst = &j.host
		}
		v, f := j.string(sc, dst)
		if f.failed() {
			return f
		}
		return s.set(k, v)
	case c == '-' || c-'0' < 10:
		start := sc.i
		for sc.i < len(sc.b) && isNumberByte(sc.b[sc.i]) {
			sc.i++
		}
		if k == fieldHost {
			return fault{field: "host", msg: "want a string, got number", val: sc.b[start:sc.i]}
		}
		return s.set(k, sc.b[start:sc.i])
	case c == 'n':
		if !sc.literal("null") {
			return sc.syntax("a value")
		}
		j.unset(k, s)
		return fault{}
	case c == 't' || c == 'f':
		if !sc.literal("true") && !sc.literal("false") {
			return sc.syntax("a value")
		}
		return wrongType(k, "boolean")
	case c == '{' || c == '[':
		if f := j.skipComposite(sc); f.failed() {
			return f
		}
		return wrongType(k, "object or array")
	}
	return sc.syntax("a value")
}

func isNumberByte(c byte) bool {
	return c-'0' < 10 || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
}

// wrongType reports a value of the wrong JSON type for a known field.
func wrongType(k int, got string) fault {
	switch k {
	case fieldUnknown:
		return fault{}
	case fieldHost:
		return fault{field: "host", msg: "want a string, got " + got}
	case fieldTimestamp:
		return fault{field: "timestamp", msg: "want a string or number, got " + got}
	}
	return fault{field: metricNames[k], msg: "want a number, got " + got}
}

// unset handles a null: the field counts as not given.
func (j *jsonReader) unset(k int, s *sample) {
	switch k {
	case fieldUnknown:
	case fieldTimestamp:
		s.hasTS = false
	case fieldHost:
		s.hasHost = false
	default:
		s.has &^= 1 << k
	}
}

// literal consumes word if the text continues with it.
func (sc *jsonScan) literal(word string) bool {
	if len(sc.b)-sc.i < len(word) || string(sc.b[sc.i:sc.i+len(word)]) != word {
		return false
	}
	sc.i += len(word)
	return true
}

// string parses the string at sc.i. Without escapes the result aliases the
// line; otherwise it is decoded into *dst.
func (j *jsonReader) string(sc *jsonScan, dst *[]byte) ([]byte, fault) {
	start := sc.i + 1
	for i := start; i < len(sc.b); i++ {
		switch c := sc.b[i]; {
		case c == '"':
			sc.i = i + 1
			return sc.b[start:i], fault{}
		case c == '\\':
			return j.unescape(sc, start, dst)
		case c < 0x20:
			sc.i = i
			return nil, fault{msg: "invalid JSON: control character in string"}
		}
	}
	sc.i = len(sc.b)
	return nil, sc.syntax(`closing "`)
}

// unescape decodes the string whose content starts at b[start] into *dst.
func (j *jsonReader) unescape(sc *jsonScan, start int, dst *[]byte) ([]byte, fault) {
	out := (*dst)[:0]
	b := sc.b
	for i := start; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			sc.i = i + 1
			*dst = out
			return out, fault{}
		case c < 0x20:
			return nil, fault{msg: "invalid JSON: control character in string"}
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}

		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := decodeU(b[i:])
			if n == 0 {
				return nil, fault{msg: `invalid JSON: bad \u escape`, val: b[i:min(len(b), i+6)]}
			}
			out = utf8.AppendRune(out, r)
			i += n
			continue
		default:
			return nil, fault{msg: "invalid JSON: bad escape", val: b[i : i+2]}
		}
		i += 2
	}
	sc.i = len(b)
	return nil, sc.syntax(`closing "`)
}

// decodeU decodes a \uXXXX escape at the start of b, joining a surrogate
// pair, and returns the rune and the bytes used, 0 when malformed. A lone
// surrogate decodes to U+FFFD, as encoding/json does.
func decodeU(b []byte) (rune, int) {
	r, ok := hex4(b)
	if !ok {
		return 0, 0
	}
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if r2, ok := hex4(b[6:]); ok {
		if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
			return pair, 12
		}
	}
	return utf8.RuneError, 6
}

// hex4 reads the four hex digits of a \uXXXX escape at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipComposite skips the object or array at sc.i, minding strings.
func (j *jsonReader) skipComposite(sc *jsonScan) fault {
	depth := 0
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				sc.i++
				return fault{}
			}
		case '"':
			if _, f := j.string(sc, &j.str); f.failed() {
				return f
			}
			continue
		}
		sc.i++
	}
	return sc.syntax("end of nested value")
}
