//go:build !race

package capture

// raceEnabled tells tests that the race detector slows them tenfold.
const raceEnabled = false
