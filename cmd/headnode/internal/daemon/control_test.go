package daemon

import (
	"bytes"
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

// TestControlSocketGroup: the socket goes to the configured group, so its
// members can use the CLI; without that group (or with "") it stays
// root's, which is said once in the log when a group was asked for.
func TestControlSocketGroup(t *testing.T) {
	other := otherGroup(t)
	for _, c := range []struct {
		name, group, wantGid, wantLog string
	}{
		{"existing group", other.Name, other.Gid, ""},
		{"no group", "", strconv.Itoa(os.Getegid()), ""},
		{"group missing", "headnode-test-no-such-group", strconv.Itoa(os.Getegid()), "control socket is for root only: its group does not exist"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "control.sock")
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var log bytes.Buffer
			d := &Daemon{log: slog.New(slog.NewTextHandler(&log, nil))}
			d.shareSocket(path, c.group)

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if gid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)); gid != c.wantGid {
				t.Errorf("socket group %s, want %s", gid, c.wantGid)
			}
			if c.wantLog == "" && log.Len() > 0 || !strings.Contains(log.String(), c.wantLog) {
				t.Errorf("log %q, want %q", log.String(), c.wantLog)
			}
		})
	}
}
