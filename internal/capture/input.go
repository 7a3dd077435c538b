package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Sizes of the read buffer. It starts small, which keeps small captures
// cheap, and doubles while a line does not fit, up to maxLine. Longer
// lines are malformed rows; this is what keeps memory constant on input
// without newlines.
const (
	minBuffer = 64 << 10
	maxLine   = 1 << 20
)

// Formats reported in Result.Format.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// input is the decompressed text of a capture, read line by line.
type input struct {
	format string
	gzip   bool
	lines  *lineReader
	raw    *countingReader
	ahead  *readAhead
}

// openInput detects gzip by its magic bytes and the format by the first
// non-blank byte, and rejects binary data. The caller must close the input.
func openInput(
	ctx context.Context,
	r io.Reader,
	progress func(int64),
	every time.Duration,
) (*input, error) {
	raw := &countingReader{r: r}
	br := bufio.NewReaderSize(raw, 64<<10)

	in := &input{raw: raw}
	var text io.Reader = br
	magic, err := br.Peek(2)
	switch {
	case len(magic) == 0 && errors.Is(err, io.EOF):
		return nil, unreadable("empty input")
	case len(magic) == 0 && err != nil:
		return nil, fmt.Errorf("read capture: %w", err)
	case bytes.Equal(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, raw.classify(err, "gzip")
		}
		// Inflating costs about as much as parsing, so it runs on another
		// core, one block ahead.
		in.gzip = true
		in.ahead = newReadAhead(zr)
		text = in.ahead
	}

	in.lines = &lineReader{
		ctx:      ctx,
		r:        text,
		raw:      raw,
		gzip:     in.gzip,
		buf:      make([]byte, minBuffer),
		progress: progress,
		every:    every,
	}
	if err := in.sniff(); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// close stops reading ahead, if it was, and waits until r is no longer in
// use.
func (in *input) close() {
	if in.ahead != nil {
		in.ahead.close()
	}
}

// sniff picks the format from the first non-blank byte, after a UTF-8
// byte order mark, which it consumes.
func (in *input) sniff() error {
	lr := in.lines
	for first := true; ; first = false {
		head, err := lr.peek()
		if err != nil {
			return err
		}
		if first && bytes.HasPrefix(head, utf8BOM) {
			lr.pos += len(utf8BOM)
			head = head[len(utf8BOM):]
		}
		if first && looksBinary(head) {
			return unreadable("binary data, not CSV or JSON Lines")
		}

		text := bytes.TrimLeft(head, " \t\r\n")
		switch {
		case len(text) > 0 && text[0] == '{':
			in.format = FormatJSONL
			return nil
		case len(text) > 0:
			in.format = FormatCSV
			return nil
		case lr.eof:
			return unreadable("empty input")
		}

		// A buffer full of white space: drop it, counting its lines.
		lr.line += int64(bytes.Count(head, []byte{'\n'}))
		lr.pos, lr.end = 0, 0
	}
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// looksBinary reports whether the first bytes of a file are not text: a NUL
// byte, or more than a tenth of the sample being control characters or
// invalid UTF-8. Latin-1 host names stay under that.
func looksBinary(b []byte) bool {
	b = b[:min(len(b), 4096)]
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}

	odd := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				odd++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 && len(b)-i >= utf8.UTFMax {
			odd++
		}
		i += size
	}
	return odd*10 > len(b)
}

// countingReader counts the raw bytes read. With read-ahead it is used
// from two goroutines: n is atomic, and err is read only after the reading
// goroutine has handed over the error and stopped.
type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	err error // the last error from r, to tell it from a gzip error
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n.Add(int64(n))
	if err != nil {
		cr.err = err
	}
	return n, err
}

// classify turns an error from the decompressor or the raw reader into the
// error Analyze returns: damage in the gzip stream makes the capture
// unreadable, while a failing source is an I/O error.
func (cr *countingReader) classify(err error, what string) error {
	if cr.err != nil && cr.err != io.EOF && errors.Is(err, cr.err) {
		return fmt.Errorf("read capture: %w", err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return unreadable(fmt.Sprintf("%s data truncated after %d bytes", what, cr.n.Load()))
	}
	return unreadable(fmt.Sprintf("bad %s data: %v", what, err))
}

func unreadable(reason string) *InputError {
	return &InputError{Err: ErrUnreadable, Reason: reason}
}

// lineReader splits text into lines in a fixed buffer. Each time it
// refills, it checks for cancellation and reports progress.
type lineReader struct {
	ctx  context.Context
	r    io.Reader
	raw  *countingReader
	gzip bool

	buf      []byte
	pos, end int
	eof      bool
	err      error // sticky; set when reading fails

	progress func(int64)
	every    time.Duration
	reported time.Time

	// line is the number of the last line returned.
	line int64
}

// peek fills the buffer and returns the unread text it holds.
func (lr *lineReader) peek() ([]byte, error) {
	for !lr.eof && lr.err == nil && lr.end < len(lr.buf) {
		lr.fill()
	}
	return lr.buf[lr.pos:lr.end], lr.err
}

// next returns the next line without its line ending. The line aliases
// the buffer and is valid until the next call. tooLong reports a line
// longer than maxLine, which is skipped. ok is false at the end of the
// text or on error, which lr.err then holds.
func (lr *lineReader) next() (line []byte, tooLong, ok bool) {
	scanned := 0
	for {
		rest := lr.buf[lr.pos+scanned : lr.end]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = lr.buf[lr.pos : lr.pos+scanned+i]
			lr.pos += scanned + i + 1
			lr.line++
			return dropCR(line), false, true
		}
		scanned += len(rest)

		switch {
		case lr.err != nil:
			return nil, false, false
		case lr.eof && lr.pos == lr.end:
			return nil, false, false
		case lr.eof:
			line = lr.buf[lr.pos:lr.end]
			lr.pos = lr.end
			lr.line++
			return dropCR(line), false, true
		case lr.pos == 0 && lr.end == len(lr.buf) && len(lr.buf) < maxLine:
			lr.buf = append(lr.buf, make([]byte, len(lr.buf))...)
			continue
		case lr.pos == 0 && lr.end == len(lr.buf):
			lr.skipLine()
			lr.line++
			return nil, true, lr.err == nil
		}

		if lr.pos > 0 {
			lr.end = copy(lr.buf, lr.buf[lr.pos:lr.end])
			lr.pos = 0
		}
		lr.fill()
	}
}

// skipLine discards input up to and including the next newline.
func (lr *lineReader) skipLine() {
	for {
		if i := bytes.IndexByte(lr.buf[lr.pos:lr.end], '\n'); i >= 0 {
			lr.pos += i + 1
			return
		}
		lr.pos, lr.end = 0, 0
		if lr.eof || lr.err != nil {
			return
		}
		lr.fill()
	}
}

// fill reads once into the free end of the buffer.
func (lr *lineReader) fill() {
	if err := lr.ctx.Err(); err != nil {
		lr.err = fmt.Errorf("analyze capture: %w", err)
		return
	}

	n, err := lr.r.Read(lr.buf[lr.end:])
	lr.end += n
	if lr.progress != nil {
		if now := time.Now(); now.Sub(lr.reported) >= lr.every {
			lr.reported = now
			lr.progress(lr.raw.n.Load())
		}
	}
	switch {
	case err == io.EOF:
		lr.eof = true
	case err != nil && lr.gzip:
		lr.err = lr.raw.classify(err, "gzip")
	case err != nil:
		lr.err = fmt.Errorf("read capture: %w", err)
	}
}

func dropCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// readAhead reads from r on its own goroutine into a few fixed blocks, so
// that producing the text overlaps with parsing it.
type readAhead struct {
	full chan aheadBlock
	free chan []byte
	done chan struct{}

	cur aheadBlock
	off int
}

// aheadBlock is a block of text and the error that ended it, if any.
type aheadBlock struct {
	buf []byte
	err error
}

const (
	aheadBlocks    = 3
	aheadBlockSize = 256 << 10
)

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{
		full: make(chan aheadBlock, aheadBlocks),
		free: make(chan []byte, aheadBlocks),
		done: make(chan struct{}),
	}
	for range aheadBlocks {
		ra.free <- make([]byte, aheadBlockSize)
	}
	go ra.run(r)
	return ra
}

// run fills free blocks until r fails or ends, or close is called.
func (ra *readAhead) run(r io.Reader) {
	defer close(ra.full)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return
		}

		n := 0
		var err error
		for n < len(buf) && err == nil {
			var k int
			k, err = r.Read(buf[n:])
			n += k
		}

		select {
		case ra.full <- aheadBlock{buf: buf[:n], err: err}:
		case <-ra.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read returns the text in order, then the error that ended it.
func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off == len(ra.cur.buf) {
		if ra.cur.err != nil {
			return 0, ra.cur.err
		}
		if ra.cur.buf != nil {
			ra.free <- ra.cur.buf[:cap(ra.cur.buf)]
		}
		b, ok := <-ra.full
		if !ok {
			return 0, io.ErrClosedPipe
		}
		ra.cur, ra.off = b, 0
	}

	n := copy(p, ra.cur.buf[ra.off:])
	ra.off += n
	return n, nil
}

// close stops the reading goroutine and waits for it to return.
func (ra *readAhead) close() {
	close(ra.done)
	for range ra.full {
	}
}
