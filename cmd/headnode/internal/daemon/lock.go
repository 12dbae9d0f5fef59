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

// The daemon holds an exclusive flock on its state directory, and writes
// its PID to lockFile there. Two daemons on one machine would both apply
// NAT, serve DHCP on port 67 (SO_REUSEPORT lets the second bind) into one
// lease file and read-modify-write the same power expander; the second
// therefore stops before it touches anything. The kernel drops the lock
// when its holder dies, however it dies, so a lock is never stale. The
// directory itself is locked, not a file in it, so that a state directory
// that cannot be written (a read-only root) still admits one daemon. The
// CLI takes no lock: it talks to the daemon, or (nat clear, led stopped)
// does one thing the daemon would do too.
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
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	pidFile := filepath.Join(dir, lockFile)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s holds %s): stop it first (systemctl stop headnode), or give this one another [daemon] state_dir", ErrLocked, holder(dir), pidFile)
		}
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	// Only the holder writes it, so no one reads a half-written PID but
	// in the moment before it is written (holder then asks the kernel).
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	return f, nil
}

// holder names the process holding the lock on dir: the PID it wrote to
// lockFile, else the one the kernel lists in /proc/locks (the holder may
// not have written its PID yet, or could not).
func holder(dir string) string {
	path := filepath.Join(dir, lockFile)
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return "PID " + strconv.Itoa(pid)
		}
	}
	if pid := lockHolder(dir); pid > 0 {
		return "PID " + strconv.Itoa(pid)
	}
	return "a process"
}

// lockHolder finds the flock on path in /proc/locks ("1: FLOCK ADVISORY WRITE
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
