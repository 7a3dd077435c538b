package capture

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrUnreadable means the input is not a capture Analyze can read: it is
	// empty, binary, neither CSV nor JSON Lines, damaged gzip, a CSV header
	// without the required columns, or it holds no data rows.
	ErrUnreadable = errors.New("unreadable capture")

	// ErrMostlyBad means more than half of the data rows are malformed, so
	// a summary of the rest would mislead.
	ErrMostlyBad = errors.New("capture mostly malformed")
)

// InputError is the error Analyze returns for bad input. It wraps
// ErrUnreadable or ErrMostlyBad, so callers can test it with errors.Is, and
// carries the detail to show the uploader.
type InputError struct {
	// Err is ErrUnreadable or ErrMostlyBad.
	Err error
	// Reason says what is wrong, in words for the person who uploaded it.
	Reason string
	// Rows and Malformed count the data rows read before giving up.
	Rows      int64
	Malformed int64
	// Examples holds the first malformed rows, in input order.
	Examples []RowError
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if len(e.Examples) > 0 {
		b.WriteString(" (first: ")
		b.WriteString(e.Examples[0].Error())
		b.WriteString(")")
	}
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// RowError describes one malformed or late row.
type RowError struct {
	// Line is the 1-based line on which the row starts, counted in the
	// decompressed text.
	Line int64 `json:"line"`
	// Field names the column or key at fault, empty when the whole row is.
	Field string `json:"field,omitempty"`
	// Message says what is wrong, quoting the offending value.
	Message string `json:"message"`
}

// Error formats the row error as `line 7: cpu_pct: invalid number "abc"`.
func (e RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Message)
}

// fault is a row problem as the parsers find it. It is formatted into a
// RowError only when reported, so counting malformed rows costs no
// allocation.
type fault struct {
	field string
	// msg is the message; with nums set it is a format for them.
	msg  string
	nums []int
	// val, when not nil, is the offending input, quoted after msg. It
	// aliases the read buffer and is only valid until the next line.
	val []byte
}

func (f fault) failed() bool { return f.msg != "" }

func (f fault) withField(name string) fault {
	if f.field == "" {
		f.field = name
	}
	return f
}

// maxQuoted bounds how much of an offending value a message repeats.
const maxQuoted = 64

func (f fault) rowError(line int64) RowError {
	msg := f.msg
	if f.nums != nil {
		args := make([]any, len(f.nums))
		for i, n := range f.nums {
			args[i] = n
		}
		msg = fmt.Sprintf(msg, args...)
	}
	if f.val != nil {
		v := f.val
		suffix := ""
		if len(v) > maxQuoted {
			v, suffix = v[:maxQuoted], "..."
		}
		msg += " " + strconv.Quote(string(v)) + suffix
	}
	return RowError{Line: line, Field: f.field, Message: msg}
}
