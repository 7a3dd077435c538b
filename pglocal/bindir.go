package pglocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinaries is returned, usually wrapped with the places searched, when
// no directory holds the PostgreSQL server programs initdb, pg_ctl and
// postgres. Its message says what to install.
var ErrNoBinaries = errors.New("postgresql server binaries (initdb, pg_ctl, postgres) not found; " +
	"install them: `apt-get install postgresql` on Debian/Ubuntu, " +
	"`dnf install postgresql-server` on Fedora/RHEL, `brew install postgresql` on macOS")

// serverPrograms are the programs a bin directory must hold to be usable.
var serverPrograms = []string{"initdb", "pg_ctl", "postgres"}

// searchPlaces says where FindBinDir looks. Tests replace it to prove the
// failure path on a machine that has PostgreSQL installed.
type searchPlaces struct {
	path  string   // a PATH-style list of directories
	globs []string // patterns of versioned bin directories, newest wins
}

func defaultSearchPlaces() searchPlaces {
	return searchPlaces{
		path:  os.Getenv("PATH"),
		globs: []string{"/usr/lib/postgresql/*/bin"},
	}
}

// FindBinDir returns the directory holding the PostgreSQL server programs
// initdb, pg_ctl and postgres. It looks, in order, for initdb on PATH
// (following symlinks to the real directory), in the directory printed by
// `pg_config --bindir` (pg_config itself found on PATH), and in the
// highest-versioned /usr/lib/postgresql/*/bin. A candidate counts only if it
// holds all three programs. When none does, the error wraps ErrNoBinaries and
// names the places searched.
func FindBinDir() (string, error) {
	return findBinDir(defaultSearchPlaces())
}

func findBinDir(sp searchPlaces) (string, error) {
	if dir, ok := binDirFromPath(sp.path); ok {
		return dir, nil
	}

	if dir, ok := binDirFromPGConfig(sp.path); ok {
		return dir, nil
	}

	for _, pattern := range sp.globs {
		if dir, ok := newestBinDir(pattern); ok {
			return dir, nil
		}
	}

	return "", fmt.Errorf(
		"searched PATH, `pg_config --bindir` and %s: %w",
		strings.Join(sp.globs, ", "),
		ErrNoBinaries,
	)
}

// binDirFromPath finds initdb on the PATH-style list and returns the real
// directory behind it. Debian links only some programs into /usr/bin or
// /usr/local/bin, so the directory of the link itself is not enough.
func binDirFromPath(path string) (string, bool) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}

		real, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb"))
		if err != nil {
			continue
		}

		if binDir := filepath.Dir(real); hasServerPrograms(binDir) {
			return binDir, true
		}
	}

	return "", false
}

func binDirFromPGConfig(path string) (string, bool) {
	var pgConfig string
	for _, dir := range filepath.SplitList(path) {
		if dir != "" && isExecutable(filepath.Join(dir, "pg_config")) {
			pgConfig = filepath.Join(dir, "pg_config")
			break
		}
	}
	if pgConfig == "" {
		return "", false
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
	if err != nil {
		return "", false
	}

	dir := strings.TrimSpace(string(out))
	return dir, dir != "" && hasServerPrograms(dir)
}

// newestBinDir expands a pattern such as /usr/lib/postgresql/*/bin and
// returns the match whose version directory sorts highest, so that 16 beats
// 9.6 even though it sorts lower as text.
func newestBinDir(pattern string) (string, bool) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return "", false
	}

	slices.SortFunc(matches, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})

	for _, dir := range matches {
		if hasServerPrograms(dir) {
			return dir, true
		}
	}
	return "", false
}

// compareVersions compares dotted numeric versions; parts that are not
// numbers compare as zero.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func hasServerPrograms(dir string) bool {
	for _, name := range serverPrograms {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
