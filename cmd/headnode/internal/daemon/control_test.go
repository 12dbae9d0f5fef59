package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// otherGroup returns a group, not the process's own, that this process may
// give a file to: any group as root, else one of its supplementary groups.
func otherGroup(t *testing.T) *user.Group {
	t.Helper()
	var gids []int
	if os.Geteuid() == 0 {
		b, err := os.ReadFile("/etc/group")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 3 {
				if gid, err := strconv.Atoi(f[2]); err == nil {
					gids = append(gids, gid)
				}
			}
		}
	} else {
		gids, _ = os.Getgroups()
	}
	for _, gid := range gids {
		if gid == os.Getegid() {
			continue
		}
		if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
			return g
		}
	}
	t.Skip("no group other than the process's own to give the socket to")
	return nil
}

// TestControlSocketGroup: the socket goes to the configured group (mode
// 0660), so its members can use the CLI; without that group (or with "")
// it is root's alone (0600), which is said once in the log when a group
// was asked for.
func TestControlSocketGroup(t *testing.T) {
	other := otherGroup(t)
	for _, c := range []struct {
		name, group, wantGid, wantLog string
		wantMode                      os.FileMode
	}{
		{"existing group", other.Name, other.Gid, "", 0o660},
		{"no group", "", strconv.Itoa(os.Getegid()), "", 0o600},
		{"group missing", "headnode-test-no-such-group", strconv.Itoa(os.Getegid()), "control socket is for root only: its group does not exist", 0o600},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "control.sock")
			var log bytes.Buffer
			d := &Daemon{log: slog.New(slog.NewTextHandler(&log, nil))}
			o := d.socketOwner(c.group)
			l, _, err := listenSocket(path, o.gid, o.mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if gid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)); gid != c.wantGid {
				t.Errorf("socket group %s, want %s", gid, c.wantGid)
			}
			if fi.Mode().Perm() != c.wantMode {
				t.Errorf("socket mode %v, want %v", fi.Mode().Perm(), c.wantMode)
			}
			if c.wantLog == "" && log.Len() > 0 || !strings.Contains(log.String(), c.wantLog) {
				t.Errorf("log %q, want %q", log.String(), c.wantLog)
			}
		})
	}
}

// TestSocketPathSafety: only a stale socket (nobody answers) is replaced;
// a regular file, a directory, a symbolic link or a live socket at the path
// are refused with one line naming the path, and left as they were.
func TestSocketPathSafety(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	os.WriteFile(regular, []byte("precious"), 0o644)
	directory := filepath.Join(dir, "dir")
	os.Mkdir(directory, 0o755)
	link := filepath.Join(dir, "link")
	os.Symlink(regular, link)
	live := filepath.Join(dir, "live.sock")
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close() // the file stays, nobody listens: a daemon that died

	for _, c := range []struct{ path, want string }{
		{regular, regular + " is a regular file, not a socket"},
		{directory, directory + " is a directory, not a socket"},
		{link, link + " is a symbolic link, not a socket"},
		{live, "answers on the socket " + live},
	} {
		l, _, err := listenSocket(c.path, -1, 0o600, nil)
		if err == nil {
			l.Close()
			t.Errorf("%s: taken", c.path)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %q, want one line with %q", c.path, err, c.want)
		}
	}
	if b, _ := os.ReadFile(regular); string(b) != "precious" {
		t.Errorf("the regular file was touched: %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the link was touched: %v %v", fi, err)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Errorf("the live socket was taken: %v", err)
	} else {
		c.Close()
	}
	l, fi, err := listenSocket(stale, -1, 0o600, nil)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if c, err := net.Dial("unix", stale); err != nil {
		t.Errorf("the new socket does not answer: %v", err)
	} else {
		c.Close()
	}
	// Replacing our own socket (a reload) needs it named as ours.
	if l2, _, err := listenSocket(stale, -1, 0o600, nil); err == nil || !strings.Contains(err.Error(), "answers") {
		t.Errorf("our live socket, not named as ours: %v", err)
		if l2 != nil {
			l2.Close()
		}
	}
	l2, fi2, err := listenSocket(stale, -1, 0o600, fi)
	if err != nil {
		t.Fatalf("replacing our own socket: %v", err)
	}
	defer l2.Close()
	// Closing the replaced one leaves the new one in place.
	l.Close()
	removeSocket(stale, fi)
	if c, err := net.Dial("unix", stale); err != nil {
		t.Errorf("the replacing socket is gone: %v", err)
	} else {
		c.Close()
	}
	removeSocket(stale, fi2)
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("our socket is still there after removeSocket: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("left behind in the directory: %v", ents)
	}
}

// TestSocketNeverWider watches the path while the socket is created, again
// and again: the socket is never seen with another mode or group than its
// final ones. (Binding at the path and changing the mode after, as before,
// showed the umask's mode to a watcher in this test.)
func TestSocketNeverWider(t *testing.T) {
	other := otherGroup(t)
	gid, _ := strconv.Atoi(other.Gid)
	dir := t.TempDir()
	path := filepath.Join(dir, "control.sock")
	stop := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			fi, err := os.Lstat(path)
			if err != nil {
				continue
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != 0o660 || int(st.Gid) != gid {
				seen <- fmt.Sprintf("%v gid %d", fi.Mode(), st.Gid)
				return
			}
		}
	}()
	for range 300 {
		l, fi, err := listenSocket(path, gid, 0o660, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		removeSocket(path, fi)
	}
	close(stop)
	if s, ok := <-seen; ok {
		t.Errorf("the socket was reachable as %s before it had its mode and group", s)
	}
}
