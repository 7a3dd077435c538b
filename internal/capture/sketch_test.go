package capture

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSketchAccuracy(t *testing.T) {
	t.Parallel()

	// Each distribution draws from its own generator, as the subtests run
	// in parallel.
	distributions := map[string]func(rng *rand.Rand) float64{
		"uniform percent":  func(rng *rand.Rand) float64 { return rng.Float64() * 100 },
		"exponential iops": func(rng *rand.Rand) float64 { return rng.ExpFloat64() * 500 },
		"lognormal bytes":  func(rng *rand.Rand) float64 { return math.Exp(rng.NormFloat64()*3 + 15) },
		"mostly zero": func(rng *rand.Rand) float64 {
			if rng.IntN(100) < 97 {
				return 0
			}
			return rng.Float64() * 10
		},
		"constant": func(*rand.Rand) float64 { return 4096 },
		// Nine decades, just inside the 2^32 that the sketch keeps exact.
		"wide range": func(rng *rand.Rand) float64 { return math.Pow(10, rng.Float64()*9-3) },
	}
	for name, draw := range distributions {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(7, 8))
			for _, n := range []int{1, 2, 19, 20, 21, 1000, 100000} {
				values := make([]float64, n)
				var m metricAcc
				for i := range values {
					values[i] = clampSmall(draw(rng))
					m.add(values[i])
				}
				slices.Sort(values)

				// Nearest rank: the ⌈0.95·n⌉-th smallest value.
				want := values[(95*n+99)/100-1]
				got := m.stats().P95
				require.InDelta(t, want, got, want*SketchAccuracy, "n=%d", n)
				require.LessOrEqual(t, got, values[n-1])
			}
		})
	}
}

func TestSketchCollapse(t *testing.T) {
	t.Parallel()

	// Values spanning 2^80 overflow sketchMaxBins: the low ones merge, the
	// high quantiles stay accurate and memory stays bounded.
	var s sketch
	var values []float64
	for e := -40; e < 40; e++ {
		for i := range 100 {
			v := math.Ldexp(1+float64(i)/100, e)
			values = append(values, v)
			s.add(sketchKey(v), 1)
		}
	}
	require.LessOrEqual(t, len(s.bins), sketchMaxBins)

	slices.Sort(values)
	n := len(values)
	want := values[(95*n+99)/100-1]
	require.InDelta(t, want, s.percentile(95, values[0], values[n-1]), want*SketchAccuracy)
}

func TestSketchEmpty(t *testing.T) {
	t.Parallel()

	var s sketch
	require.Zero(t, s.percentile(95, 0, 0))
}

func TestSketchMerge(t *testing.T) {
	t.Parallel()

	// Values spread over three sketches and merged give the same bins as
	// one sketch that saw them all.
	rng := rand.New(rand.NewPCG(11, 12))
	var all metricAcc
	parts := make([]metricAcc, 3)
	for range 10000 {
		v := clampSmall(rng.ExpFloat64() * 1000 * float64(rng.IntN(3)))
		all.add(v)
		parts[rng.IntN(len(parts))].add(v)
	}

	var merged metricAcc
	for i := range parts {
		merged.merge(&parts[i])
	}
	require.Equal(t, all.n, merged.n)
	require.Equal(t, all.max, merged.max)
	require.InDelta(t, all.sum, merged.sum, all.sum*1e-12)
	require.Equal(t, all.sk.zeros, merged.sk.zeros)
	require.Equal(t, all.stats().P95, merged.stats().P95)
}
