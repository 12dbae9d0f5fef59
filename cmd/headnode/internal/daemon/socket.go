package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// listenSocket creates the unix socket at path with its owner and mode
// set before anyone can reach it: it is bound in a fresh private
// directory (mode 0700) beside path, given gid and mode there, and then
// renamed over path in one step. So there is no moment at which the socket
// is reachable with wider permissions, and a socket replaced on a reload
// (another group) never goes missing for the CLI.
//
// What is at path already must be a stale socket (one nobody answers on:
// left by a daemon that died) or, with own, the socket own describes (ours,
// being replaced); anything else is refused, named, and left alone.
func listenSocket(path string, gid int, mode fs.FileMode, own fs.FileInfo) (*net.UnixListener, fs.FileInfo, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := checkSocketPath(path, own); err != nil {
		return nil, nil, err
	}
	// A short name: a unix socket's path has room for 107 bytes.
	tmp, err := os.MkdirTemp(dir, ".s")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	// The path the listener was bound to goes with its directory; the
	// final path is removed by whoever closes it (remove), only while it
	// is still this socket.
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, fs.FileInfo, error) {
		l.Close()
		return nil, nil, err
	}
	if err := os.Chown(bound, -1, gid); err != nil {
		return fail(err)
	}
	if err := os.Chmod(bound, mode); err != nil {
		return fail(err)
	}
	// Checked once more right before the rename: what appeared since
	// is not replaced unless it too is a stale socket.
	if err := checkSocketPath(path, own); err != nil {
		return fail(err)
	}
	if err := os.Rename(bound, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return l, fi, nil
}

// checkSocketPath says whether path may be taken for a new socket: it is
// free, holds own, or holds a socket that refuses connections.
func checkSocketPath(path string, own fs.FileInfo) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case own != nil && os.SameFile(fi, own):
		return nil
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("%s is %s, not a socket; headnode replaces only a socket left by a daemon that died: move it away or set [control] socket to another path", path, kindOf(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("another program (another headnode daemon?) answers on the socket %s; stop it first, or set [control] socket to another path", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil // stale: renamed over
	default:
		return fmt.Errorf("%s: the socket there cannot be checked (%v), so it is left alone; remove it if no daemon uses it", path, err)
	}
}

func kindOf(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "not a socket (" + m.Type().String() + ")"
}

// removeSocket removes path if it is still the socket fi describes (and
// not one that replaced it).
func removeSocket(path string, fi fs.FileInfo) {
	if cur, err := os.Lstat(path); err == nil && fi != nil && os.SameFile(cur, fi) {
		os.Remove(path)
	}
}
