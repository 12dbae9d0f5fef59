package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// lockFile in the state directory is held (flock, exclusive) by the one
// daemon using that directory, and holds its PID. Two daemons on one
// machine would both apply NAT, serve DHCP on port 67 (SO_REUSEPORT lets
// the second bind) into one lease file and read-modify-write the same
// power expander; the second therefore stops before it touches anything.
// The kernel drops the lock when its holder dies, however it dies, so a
// lock is never stale. The CLI takes no lock: it talks to the daemon, or
// (nat clear, led stopped) does one thing the daemon would do too.
const lockFile = "daemon.lock"

// ErrLocked is what a second daemon on the same state directory gets.
var ErrLocked = errors.New("another headnode daemon is running")

// lockStateDir takes the state directory for this process, creating it
// if needed. The returned file keeps the lock until it is closed or the
// process ends; it is not passed to the programs the daemon runs
// (O_CLOEXEC), which would otherwise keep it after a crash.
func lockStateDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s holds %s): stop it first (systemctl stop headnode), or give this one another [daemon] state_dir", ErrLocked, holder(path), path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// holder names the process holding the lock on path: the PID it wrote
// there, else the one the kernel lists in /proc/locks (the holder may not
// have written its PID yet).
func holder(path string) string {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return "PID " + strconv.Itoa(pid)
		}
	}
	if pid := lockHolder(path); pid > 0 {
		return "PID " + strconv.Itoa(pid)
	}
	return "a process"
}

// lockHolder finds path's flock in /proc/locks ("1: FLOCK ADVISORY WRITE
// PID MAJ:MIN:INODE 0 EOF").
func lockHolder(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	suffix := ":" + strconv.FormatUint(st.Ino, 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 6 && fs[1] == "FLOCK" && strings.HasSuffix(fs[5], suffix) && devMatches(fs[5], st.Dev) {
			pid, _ := strconv.Atoi(fs[4])
			return pid
		}
	}
	return 0
}

// devMatches compares /proc/locks' "MAJ:MIN:INODE" (hexadecimal device
// numbers) with a stat device number.
func devMatches(field string, dev uint64) bool {
	parts := strings.Split(field, ":")
	if len(parts) != 3 {
		return false
	}
	maj, err1 := strconv.ParseUint(parts[0], 16, 32)
	min, err2 := strconv.ParseUint(parts[1], 16, 32)
	return err1 == nil && err2 == nil && unix.Major(dev) == uint32(maj) && unix.Minor(dev) == uint32(min)
}
