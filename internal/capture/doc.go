// Package capture analyses the performance captures that collectors upload
// into a sizing summary.
//
// A capture holds timestamped samples from one or more hosts. Analyze reads
// it once, in constant memory, and returns a Result: time range and sample
// counts, the count, average, 95th percentile and peak of each metric per
// host and overall, the peak aggregate IOPS and throughput across hosts
// with the time bucket where each happened, and read/write ratios.
//
// # Input
//
// The format is found from the content, never from a file name: gzip by
// its magic bytes, then JSON Lines when the first non-blank byte is "{",
// CSV otherwise. A UTF-8 byte order mark and CRLF line ends are accepted.
//
// CSV has a header row naming the columns, separated by commas and quoted
// as in RFC 4180. JSON Lines has one flat object per line; values of
// unknown keys may be anything. Column names and keys match without regard
// to case or surrounding spaces, and unknown ones are ignored. The fields:
//
//	timestamp             required; RFC 3339, or Unix seconds such as
//	                      1709287200 or 1709287200.25 (a JSON number or
//	                      string); at most a day past the analysis
//	host                  required; up to 255 bytes of UTF-8
//	cpu_pct, mem_used_bytes, mem_total_bytes, read_iops, write_iops,
//	read_bytes_per_sec, write_bytes_per_sec, net_rx_bytes_per_sec,
//	net_tx_bytes_per_sec  optional; numbers from 0 to 1e18, in JSON also
//	                      as strings; an empty value or null is missing
//
// Blank lines are skipped and not counted as rows.
//
// # Bad input
//
// A row that breaks these rules is malformed: it is counted, the first few
// are described with their line numbers, and the rest of the capture is
// analysed. Analyze fails only when the capture is unreadable (empty,
// binary, damaged gzip, a CSV header without timestamp or host, no data
// rows), with ErrUnreadable, or when more than half of its rows are
// malformed, with ErrMostlyBad. Both come as an *InputError.
//
// # Usage
//
//	res, err := capture.Analyze(ctx, file, capture.Options{
//		Progress: func(n int64) { job.SetProgress(n, size) },
//	})
//	if errors.Is(err, capture.ErrUnreadable) || errors.Is(err, capture.ErrMostlyBad) {
//		// Tell the uploader what is wrong: err.Error() says it.
//	}
package capture
