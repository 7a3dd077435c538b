package capture

// Metric indexes, in the order of metricNames.
const (
	cpuPct = iota
	memUsed
	memTotal
	readIOPS
	writeIOPS
	readBytes
	writeBytes
	netRx
	netTx
	numMetrics
)

// Field indexes past the metrics, and the index of an ignored field.
const (
	fieldTimestamp = numMetrics + iota
	fieldHost
	fieldUnknown = -1
)

// metricNames holds the column and key names of the metrics.
var metricNames = [numMetrics]string{
	"cpu_pct",
	"mem_used_bytes",
	"mem_total_bytes",
	"read_iops",
	"write_iops",
	"read_bytes_per_sec",
	"write_bytes_per_sec",
	"net_rx_bytes_per_sec",
	"net_tx_bytes_per_sec",
}

// fieldIndex returns the field a column or key names, matched without
// regard to case or surrounding spaces, or fieldUnknown.
func fieldIndex(name []byte) int {
	name = trimSpace(name)
	var lower [len("net_rx_bytes_per_sec")]byte
	if len(name) > len(lower) {
		return fieldUnknown
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}

	switch string(lower[:len(name)]) {
	case "timestamp":
		return fieldTimestamp
	case "host":
		return fieldHost
	case "cpu_pct":
		return cpuPct
	case "mem_used_bytes":
		return memUsed
	case "mem_total_bytes":
		return memTotal
	case "read_iops":
		return readIOPS
	case "write_iops":
		return writeIOPS
	case "read_bytes_per_sec":
		return readBytes
	case "write_bytes_per_sec":
		return writeBytes
	case "net_rx_bytes_per_sec":
		return netRx
	case "net_tx_bytes_per_sec":
		return netTx
	}
	return fieldUnknown
}

func fieldName(i int) string {
	switch i {
	case fieldTimestamp:
		return "timestamp"
	case fieldHost:
		return "host"
	}
	return metricNames[i]
}

// sample is one parsed row. host aliases the read buffer or a parser's
// scratch space and is valid until the next row.
type sample struct {
	ts      int64
	hasTS   bool
	host    []byte
	hasHost bool
	vals    [numMetrics]float64
	has     uint16 // bit i set when vals[i] was given
}

func (s *sample) reset() {
	s.hasTS, s.hasHost, s.has = false, false, 0
}

// set stores the text v of field k in s, whichever format it came from. An
// empty metric is a missing value.
func (s *sample) set(k int, v []byte) fault {
	switch k {
	case fieldUnknown:
	case fieldTimestamp:
		ts, f := parseTimestamp(v)
		if f.failed() {
			return f.withField("timestamp")
		}
		s.ts, s.hasTS = ts, true
	case fieldHost:
		s.host, s.hasHost = v, true
	default:
		if len(trimSpace(v)) == 0 {
			s.has &^= 1 << k
			return fault{}
		}
		m, f := parseMetric(v)
		if f.failed() {
			return f.withField(metricNames[k])
		}
		s.vals[k] = m
		s.has |= 1 << k
	}
	return fault{}
}
