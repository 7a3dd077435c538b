package pglocal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeBinDir creates dir holding executable stand-ins for the given
// programs.
func fakeBinDir(t *testing.T, dir string, programs ...string) string {
	t.Helper()

	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, name := range programs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
	}
	return dir
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()

	t.Run("NothingFound", func(t *testing.T) {
		t.Parallel()

		root := t.TempDir()
		onlyInitdb := fakeBinDir(t, filepath.Join(root, "partial"), "initdb")

		_, err := findBinDir(searchPlaces{
			path:  onlyInitdb,
			globs: []string{filepath.Join(root, "nowhere", "*", "bin")},
		})
		require.ErrorIs(t, err, ErrNoBinaries)
		require.ErrorContains(t, err, "apt-get install postgresql")
		require.ErrorContains(t, err, "PATH, `pg_config --bindir` and "+root)
	})

	t.Run("EmptyPath", func(t *testing.T) {
		t.Parallel()

		_, err := findBinDir(searchPlaces{})
		require.ErrorIs(t, err, ErrNoBinaries)
	})

	t.Run("PathSymlinkResolved", func(t *testing.T) {
		t.Parallel()

		root := t.TempDir()
		real := fakeBinDir(t, filepath.Join(root, "lib", "15", "bin"), serverPrograms...)
		linkDir := filepath.Join(root, "bin")
		require.NoError(t, os.Mkdir(linkDir, 0o755))
		require.NoError(t, os.Symlink(filepath.Join(real, "initdb"), filepath.Join(linkDir, "initdb")))

		want, err := filepath.EvalSymlinks(real)
		require.NoError(t, err)

		dir, err := findBinDir(searchPlaces{path: linkDir})
		require.NoError(t, err)
		require.Equal(t, want, dir)
	})

	t.Run("PGConfig", func(t *testing.T) {
		t.Parallel()

		root := t.TempDir()
		bin := fakeBinDir(t, filepath.Join(root, "server"), serverPrograms...)
		pathDir := filepath.Join(root, "bin")
		require.NoError(t, os.Mkdir(pathDir, 0o755))
		script := "#!/bin/sh\necho " + bin + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(pathDir, "pg_config"), []byte(script), 0o755))

		dir, err := findBinDir(searchPlaces{path: pathDir})
		require.NoError(t, err)
		require.Equal(t, bin, dir)
	})

	t.Run("HighestCompleteVersion", func(t *testing.T) {
		t.Parallel()

		root := t.TempDir()
		fakeBinDir(t, filepath.Join(root, "9.6", "bin"), serverPrograms...)
		want := fakeBinDir(t, filepath.Join(root, "15", "bin"), serverPrograms...)
		fakeBinDir(t, filepath.Join(root, "16", "bin"), "initdb", "pg_ctl")

		dir, err := findBinDir(searchPlaces{globs: []string{filepath.Join(root, "*", "bin")}})
		require.NoError(t, err)
		require.Equal(t, want, dir)
	})

	t.Run("ThisMachine", func(t *testing.T) {
		t.Parallel()

		dir := requireBinDir(t)
		require.True(t, hasServerPrograms(dir), dir)
	})
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()

	tests := []struct {
		a, b string
		want int // sign only
	}{
		{"15", "15", 0},
		{"16", "9.6", 1},
		{"9.6", "10", -1},
		{"9.6", "9.5", 1},
		{"15", "15.0", 0},
		{"x", "1", -1},
	}
	for _, tt := range tests {
		got := compareVersions(tt.a, tt.b)
		require.Equal(t, tt.want, sign(got), "compareVersions(%q, %q)", tt.a, tt.b)
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
