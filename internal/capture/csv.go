package capture

import (
	"bytes"
	"fmt"
)

// maxColumns bounds the header, and with it the per-row field slice.
const maxColumns = 4096

// csvReader parses comma-separated rows after a header row, as RFC 4180
// describes them. Rows without a double quote, the common case, are split
// in place; quoted fields, which may hold commas, doubled quotes and line
// breaks, are copied into scratch space.
type csvReader struct {
	lines *lineReader
	// cols maps each column to a field index or fieldUnknown.
	cols []int

	fields [][]byte
	// rec and ends hold a quoted record: field i is rec[ends[i-1]:ends[i]].
	rec  []byte
	ends []int
}

// newCSVReader reads the header row. It fails with ErrUnreadable when the
// header is too long, cannot be split, or lacks the timestamp or host
// column.
func newCSVReader(lines *lineReader) (*csvReader, error) {
	c := &csvReader{lines: lines}
	var line []byte
	for {
		l, tooLong, ok := lines.next()
		if !ok && lines.err != nil {
			return nil, lines.err
		}
		if !ok {
			return nil, unreadable("empty input")
		}
		if tooLong {
			return nil, unreadable("CSV header longer than 1 MiB")
		}
		if len(trimSpace(l)) > 0 {
			line = l
			break
		}
	}

	names, f := c.split(line, maxColumns)
	if f.failed() {
		return nil, unreadable("CSV header: " + f.rowError(lines.line).Message)
	}
	if len(names) > maxColumns {
		return nil, unreadable(fmt.Sprintf("CSV header has more than %d columns", maxColumns))
	}
	if err := c.mapColumns(names); err != nil {
		return nil, err
	}
	return c, nil
}

// mapColumns fills c.cols from the header names.
func (c *csvReader) mapColumns(names [][]byte) error {
	seen := make(map[int]bool)
	c.cols = make([]int, len(names))
	for i, name := range names {
		k := fieldIndex(name)
		c.cols[i] = k
		if k == fieldUnknown {
			continue
		}
		if seen[k] {
			return unreadable(fmt.Sprintf("CSV header names column %q twice", fieldName(k)))
		}
		seen[k] = true
	}

	for _, k := range []int{fieldTimestamp, fieldHost} {
		if seen[k] {
			continue
		}
		reason := fmt.Sprintf("CSV header has no %q column", fieldName(k))
		if len(names) == 1 {
			reason += " (columns must be separated by commas)"
		}
		return unreadable(reason)
	}
	return nil
}

// row parses a data row into s.
func (c *csvReader) row(line []byte, s *sample) fault {
	if bytes.IndexByte(line, '"') < 0 {
		return c.plainRow(line, s)
	}

	fields, f := c.splitQuoted(line, len(c.cols))
	if f.failed() {
		return f
	}
	if len(fields) != len(c.cols) {
		return c.countFault(line, len(fields))
	}
	s.reset()
	for i, v := range fields {
		if f := s.set(c.cols[i], v); f.failed() {
			return f
		}
	}
	return fault{}
}

// plainRow parses a row without quotes in one pass. Metric values are
// scanned where they lie, so the common plain decimals are never looked
// at twice.
func (c *csvReader) plainRow(line []byte, s *sample) fault {
	s.reset()
	end := -1
	for i, k := range c.cols {
		if end == len(line) {
			return c.countFault(line, i)
		}
		pos := end + 1

		if k >= 0 && k < numMetrics {
			v, n, ok := scanDecimal(line[pos:])
			if end = pos + n; ok && (end == len(line) || line[end] == ',') {
				s.vals[k] = clampSmall(v)
				s.has |= 1 << k
				continue
			}
		}

		end = len(line)
		if j := bytes.IndexByte(line[pos:], ','); j >= 0 {
			end = pos + j
		}
		if f := s.set(k, line[pos:end]); f.failed() {
			return f
		}
	}

	if end != len(line) {
		return c.countFault(line, len(c.cols)+1)
	}
	return fault{}
}

// countFault reports a row with the wrong number of fields; n is the
// number found, or a lower bound when there are too many.
func (c *csvReader) countFault(line []byte, n int) fault {
	if n > len(c.cols) {
		n = max(n, bytes.Count(line, []byte{','})+1)
	}
	return fault{msg: "row has %d fields, header has %d", nums: []int{n, len(c.cols)}}
}

// split splits a record into fields, stopping after limit+1 fields since
// the caller rejects more than limit anyway. The fields alias line or
// c.rec and are valid until the next call.
func (c *csvReader) split(line []byte, limit int) ([][]byte, fault) {
	if bytes.IndexByte(line, '"') >= 0 {
		return c.splitQuoted(line, limit)
	}

	fields := c.fields[:0]
	for len(fields) <= limit {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			fields = append(fields, line)
			break
		}
		fields = append(fields, line[:i])
		line = line[i+1:]
	}
	c.fields = fields
	return fields, fault{}
}

// splitQuoted splits a record holding double quotes. A quoted field may
// run over several lines, which it reads from c.lines.
func (c *csvReader) splitQuoted(line []byte, limit int) ([][]byte, fault) {
	c.rec, c.ends = c.rec[:0], c.ends[:0]
	for i := 0; ; i++ {
		var f fault
		if i < len(line) && line[i] == '"' {
			line, i, f = c.quotedField(line, i+1)
		} else {
			i, f = c.plainField(line, i)
		}
		if f.failed() {
			return nil, f
		}

		c.ends = append(c.ends, len(c.rec))
		if i >= len(line) || len(c.ends) > limit {
			break
		}
	}

	fields, start := c.fields[:0], 0
	for _, end := range c.ends {
		fields = append(fields, c.rec[start:end])
		start = end
	}
	c.fields = fields
	return fields, fault{}
}

// plainField copies the unquoted field starting at line[i] and returns the
// index of the comma or line end after it.
func (c *csvReader) plainField(line []byte, i int) (int, fault) {
	end := len(line)
	if j := bytes.IndexByte(line[i:], ','); j >= 0 {
		end = i + j
	}
	field := line[i:end]
	if bytes.IndexByte(field, '"') >= 0 {
		return 0, fault{msg: `stray " in unquoted field`, val: field}
	}
	c.rec = append(c.rec, field...)
	return end, fault{}
}

// quotedField copies the quoted field whose text starts at line[i], just
// past the opening quote, reading more lines while the quote stays open.
// It returns the line holding the closing quote and the index of the comma
// or line end after it.
func (c *csvReader) quotedField(line []byte, i int) ([]byte, int, fault) {
	for {
		j := bytes.IndexByte(line[i:], '"')
		if j < 0 {
			c.rec = append(c.rec, line[i:]...)
			c.rec = append(c.rec, '\n')
			next, tooLong, ok := c.lines.next()
			if !ok || tooLong || len(c.rec) > maxLine {
				return nil, 0, fault{msg: "quoted field not closed"}
			}
			line, i = next, 0
			continue
		}

		c.rec = append(c.rec, line[i:i+j]...)
		i += j + 1
		if i < len(line) && line[i] == '"' {
			c.rec = append(c.rec, '"')
			i++
			continue
		}
		if i < len(line) && line[i] != ',' {
			after := line[i:min(len(line), i+maxQuoted)]
			return nil, 0, fault{msg: `text after closing " of quoted field`, val: after}
		}
		return line, i, fault{}
	}
}
