package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrDataDirUnreachable is returned, wrapped with the directory at fault,
// when the process runs as root and the unprivileged account the server runs
// as cannot enter a parent of the data directory (for example a data
// directory under /root, which is mode 0700). pglocal never loosens the
// permissions of parent directories; the fix is another data directory.
var ErrDataDirUnreachable = errors.New("data directory not reachable by the postgresql server account")

// serverUser is the account initdb, pg_ctl and postgres run as. Unless the
// process is root it is the current user and nothing is switched.
type serverUser struct {
	name     string
	uid, gid uint32
	switched bool // running as root: set credentials and chown files
}

// chooseServerUser picks the account for dataDir. PostgreSQL refuses to run
// as root, so root hands the work to the owner of an existing cluster, or
// else to the postgres account, or else to nobody.
func chooseServerUser(dataDir string) (serverUser, error) {
	if os.Geteuid() != 0 {
		return serverUser{
			name: strconv.Itoa(os.Geteuid()),
			uid:  uint32(os.Geteuid()),
			gid:  uint32(os.Getegid()),
		}, nil
	}

	// A cluster made by an unprivileged run keeps its owner, so the same
	// data directory works whether or not the next run is root.
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if uid, gid, ok := fileOwner(dataDir); ok && uid != 0 {
			name := strconv.FormatUint(uint64(uid), 10)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			return serverUser{name: name, uid: uid, gid: gid, switched: true}, nil
		}
	}

	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, errUID := strconv.ParseUint(u.Uid, 10, 32)
		gid, errGID := strconv.ParseUint(u.Gid, 10, 32)
		if errUID != nil || errGID != nil {
			continue
		}
		return serverUser{name: name, uid: uint32(uid), gid: uint32(gid), switched: true}, nil
	}

	return serverUser{}, errors.New("running as root, but neither a postgres nor a nobody account exists to run postgresql as")
}

// credential returns the credential to run programs with, nil for the
// current user.
func (u serverUser) credential() *syscall.Credential {
	if !u.switched {
		return nil
	}
	// An empty Groups list also drops root's supplementary groups.
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
}

// chown hands path to the server account.
func (u serverUser) chown(path string) error {
	if !u.switched {
		return nil
	}
	if err := os.Lchown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("hand %s to user %s: %w", path, u.name, err)
	}
	return nil
}

// chownTree hands dir and everything in it to the server account, unless dir
// already belongs to it; a cluster is owned as a whole or not at all.
func (u serverUser) chownTree(dir string) error {
	if !u.switched {
		return nil
	}
	if uid, _, ok := fileOwner(dir); ok && uid == u.uid {
		return nil
	}

	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return u.chown(path)
	})
}

// checkReachable reports the first parent of dir that the server account may
// not enter. It reads permission bits only, which is what matters for the
// usual /root case; ACLs are left for the server itself to report.
func (u serverUser) checkReachable(dir string) error {
	if !u.switched {
		return nil
	}

	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check access to %s: %w", p, err)
		}
		if !u.canSearch(fi) {
			return fmt.Errorf("user %s cannot enter %s (mode %s) on the way to %s", u.name, p, fi.Mode().Perm(), dir)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (u serverUser) canSearch(fi fs.FileInfo) bool {
	uid, gid, ok := statOwner(fi)
	if !ok {
		return true
	}

	perm := fi.Mode().Perm()
	switch {
	case uid == u.uid:
		return perm&0o100 != 0
	case gid == u.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func fileOwner(path string) (uid, gid uint32, ok bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, 0, false
	}
	return statOwner(fi)
}

func statOwner(fi fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}
