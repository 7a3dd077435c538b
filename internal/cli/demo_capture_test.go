package cli

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/internal/capture"
)

func TestDemoCaptureAnalyses(t *testing.T) {
	t.Parallel()
	content := demoCaptureCSV()
	require.Equal(t, content, demoCaptureCSV(), "the sample capture must be the same every time")

	res, err := capture.Analyze(t.Context(), bytes.NewReader(content), capture.Options{})
	require.NoError(t, err)
	require.Equal(t, capture.FormatCSV, res.Format)
	require.Zero(t, res.MalformedRows)
	require.EqualValues(t, 3*180, res.ValidRows)
	require.Len(t, res.Hosts, 3)
}
