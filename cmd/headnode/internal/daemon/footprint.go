package daemon

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// trimAfter is how long after start-up the daemon gives back the memory
// only start-up needed: by then every part has started and settled.
const trimAfter = 10 * time.Second

// trimStartup gives back what start-up needed and an idle daemon does not:
// the heap's free pages (debug.FreeOSMemory), and the pages of the
// program's own read-only segments (code, tables) that only
// initialisation touched. Those are clean copies of the binary: madvise
// MADV_PAGEOUT hands them back to the kernel (the page cache may drop
// them), and the few the running daemon uses fault back in from the file.
// On kernels before 5.4 (no MADV_PAGEOUT) MADV_DONTNEED unmaps them, and
// the page cache keeps them as clean, reclaimable pages. Writable
// segments are never touched. It returns the bytes advised.
func trimStartup() int64 {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.ContainsRune(fields[1], 'w') {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		if madvise(start, end-start, unix.MADV_PAGEOUT) != nil && madvise(start, end-start, unix.MADV_DONTNEED) != nil {
			continue
		}
		total += int64(end - start)
	}
	return total
}

// madvise advises on [start, start+n) of this process's own mappings,
// given by address (no Go pointer: the region is the binary's, not Go
// memory).
func madvise(start, n uint64, advice int) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(n), uintptr(advice)); e != 0 {
		return e
	}
	return nil
}
