package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// TestReloadTellsTheTruth: a reload that changes what only a restart
// applies says so (status, log, metric) and keeps running with what it
// started with; trace files follow at once, and one that cannot be opened
// is reported; going back to the running values clears the report.
func TestReloadTellsTheTruth(t *testing.T) {
	d := startInproc(t, "", "")
	s := d.reload(t, "", "[hardware.sim]\nboard = \"clusterctrl\"\n")
	if want := []string{"hardware.sim.board"}; !slices.Equal(s.Config.RestartNeeded, want) {
		t.Errorf("restart_needed %q, want %q", s.Config.RestartNeeded, want)
	}
	if !d.logged(t, `msg="configuration reloaded, but not all of it is in effect"`) || !d.logged(t, `restart_needed=hardware.sim.board`) {
		t.Errorf("the log does not say what waits for a restart")
	}
	if _, m := d.get(t, "localhost", "/metrics"); !strings.Contains(m, "headnode_config_restart_needed 1") {
		t.Errorf("metrics: %s", grep(m, "config_"))
	}
	// Still the ClusterHAT it started with (once detection has run).
	s, _ = d.waitFor(t, "a board", func(s *api.Status) bool { return len(s.Power.Boards) > 0 })
	if len(s.Power.Boards) != 1 || !strings.Contains(s.Power.Boards[0].Model, "ClusterHAT") {
		t.Errorf("boards after the reload: %+v", s.Power.Boards)
	}

	// The state directory too; and a trace on, another that cannot be
	// opened.
	i2c := filepath.Join(d.dir, "i2c.jsonl")
	bad := filepath.Join(d.dir, "missing", "hid.jsonl")
	text, _ := os.ReadFile(d.cfg)
	s = d.reloadText(t, strings.Replace(string(text), filepath.Join(d.dir, "state"), filepath.Join(d.dir, "state2"), 1))
	if !slices.Equal(s.Config.RestartNeeded, []string{"hardware.sim.board", "daemon.state_dir"}) {
		t.Errorf("restart_needed %q", s.Config.RestartNeeded)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "state2", lockFile)); err == nil {
		t.Error("the new state directory was taken before a restart")
	}
	s = d.reload(t, "", fmt.Sprintf("i2c_trace = %q\nhid_trace = %q\n", i2c, bad))
	if len(s.Config.RestartNeeded) != 0 {
		t.Errorf("back to the running values, still restart_needed %q", s.Config.RestartNeeded)
	}
	if len(s.Config.NotApplied) != 1 || !strings.HasPrefix(s.Config.NotApplied[0], "hardware.hid_trace: open "+bad) {
		t.Errorf("not_applied %q, want the HID trace", s.Config.NotApplied)
	}
	// I2C: powering a node on writes to the emulated expander.
	if err := d.client.Do(context.Background(), "POST", "/v1/power/on", api.PowerRequest{Nodes: []string{"p2"}}, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(i2c); err != nil || !strings.Contains(string(b), `"addr":32`) {
		t.Errorf("the I2C trace after a reload turned it on: %v %q", err, b)
	}
	s = d.reload(t, "", "")
	if len(s.Config.NotApplied) != 0 || len(s.Config.RestartNeeded) != 0 {
		t.Errorf("all in effect again, yet %+v", s.Config)
	}
	if !d.logged(t, `msg="configuration reloaded" `) {
		t.Error("no plain reload line when all is in effect")
	}
}

// reloadText is reload with the whole file given.
func (d *inproc) reloadText(t *testing.T, text string) *api.Status {
	t.Helper()
	before, err := d.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d.sigs <- syscall.SIGHUP
	s, _ := d.waitFor(t, "reloaded", func(s *api.Status) bool { return s.Config.LastReloadAt.After(before.Config.LastReloadAt) })
	return s
}

func (d *inproc) logged(t *testing.T, s string) bool {
	return strings.Contains(d.log.String(), s)
}

// TestReloadControl: the control socket follows [control] on a reload.
// Another group re-creates it with that group; dropping the group makes
// it root's alone and closes what was open on the one before (a status
// watch), so access is revoked at once. A new path moves it; a path
// holding a file is refused and reported, and the socket stays.
func TestReloadControl(t *testing.T) {
	other := otherGroup(t)
	d := startInproc(t, fmt.Sprintf("group = %q\n", other.Name), "")
	ownerOf := func(path string) string {
		fi, err := os.Stat(path)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%v gid %d", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	if got, want := ownerOf(d.sock), "-rw-rw---- gid "+other.Gid; got != want {
		t.Errorf("socket %s, want %s", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchEnded := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		first := true
		watchEnded <- d.client.Watch(ctx, func(*api.Status) bool {
			if first {
				close(started)
				first = false
			}
			return true
		})
	}()
	<-started
	d.reload(t, `group = ""`+"\n", "")
	if got, want := ownerOf(d.sock), "-rw------- gid "+strconv.Itoa(os.Getegid()); got != want {
		t.Errorf("socket after dropping the group: %s, want %s", got, want)
	}
	select {
	case <-watchEnded:
	case <-time.After(10 * time.Second):
		t.Error("a watch on the socket before is still open 10 s after access was revoked")
	}
	if !d.logged(t, "control socket replaced") {
		t.Error("the log does not say the socket was replaced")
	}

	moved := filepath.Join(d.dir, "moved.sock")
	before, err := d.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.writeConfig(t, fmt.Sprintf("socket = %q\n", moved), "")
	d.sigs <- syscall.SIGHUP
	d.client = api.NewClient(moved)
	d.waitFor(t, "reloaded on the moved socket", func(s *api.Status) bool { return s.Config.LastReloadAt.After(before.Config.LastReloadAt) })
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Lstat(d.sock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(end) {
			t.Error("the socket before is still there")
			break
		}
	}

	file := filepath.Join(d.dir, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	s := d.reload(t, fmt.Sprintf("socket = %q\n", file), "")
	if len(s.Config.NotApplied) != 1 || !strings.Contains(s.Config.NotApplied[0], "control.socket: "+file+" is a regular file, not a socket") ||
		!strings.Contains(s.Config.NotApplied[0], "still reaches the daemon at "+moved) {
		t.Errorf("not_applied %q", s.Config.NotApplied)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Errorf("the file was replaced: %q", b)
	}
	c, err := net.Dial("unix", moved)
	if err != nil {
		t.Errorf("the socket did not stay: %v", err)
	} else {
		c.Close()
	}
}

// TestOneDaemonPerStateDir: the state directory is locked; a second taker
// is told who holds it, by PID, in one line.
func TestOneDaemonPerStateDir(t *testing.T) {
	dir := t.TempDir()
	f, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateDir(dir)
	want := fmt.Sprintf("another headnode daemon is running (PID %d holds %s): stop it first", os.Getpid(), filepath.Join(dir, lockFile))
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("second lock: %v, want one line with %q", err, want)
	}
	// Before the holder writes its PID, /proc/locks names it.
	os.Truncate(filepath.Join(dir, lockFile), 0)
	if got := holder(dir); got != "PID "+strconv.Itoa(os.Getpid()) {
		t.Errorf("holder from /proc/locks: %q", got)
	}
	f.Close()
	f, err = lockStateDir(dir)
	if err != nil {
		t.Errorf("after the holder let go: %v", err)
	} else {
		f.Close()
	}
	// A state directory that cannot be written still locks.
	ro := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(ro, 0o755)
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, ""); err == nil {
		defer syscall.Unmount(ro, 0)
		f, err := lockStateDir(ro)
		if err != nil {
			t.Errorf("a read-only state directory: %v", err)
		} else {
			if _, err := lockStateDir(ro); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("PID %d holds", os.Getpid())) {
				t.Errorf("a second lock on a read-only state directory: %v", err)
			}
			f.Close()
		}
	} else {
		t.Logf("no read-only mount for the test (%v): needs root", err)
	}
	// A second daemon stops before it touches anything.
	d := startInproc(t, "", "")
	err = Run(context.Background(), Options{ConfigPath: d.cfg})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("PID %d holds", os.Getpid())) {
		t.Errorf("a second daemon: %v", err)
	}
	if _, err := d.client.Status(context.Background()); err != nil {
		t.Errorf("the first daemon after a second one tried: %v", err)
	}
}

// appliedLive are the keys a reload puts into effect outside the parts.
var appliedLive = []string{"control.socket", "control.group", "hardware.i2c_trace", "hardware.hid_trace"}

// TestEveryKeyAppliesOrIsReported changes each key of the configuration
// in turn: the change restarts a part, is applied by the reload itself, or
// is reported as needing a restart. A section added later without any of
// these fails here.
func TestEveryKeyAppliesOrIsReported(t *testing.T) {
	base := config.Default()
	base.Hardware.Backend = "sim"
	d := &Daemon{}
	for _, key := range leafKeys(reflect.TypeFor[config.Config](), "") {
		changed := config.Default()
		changed.Hardware.Backend = "sim"
		if key != "hardware.backend" {
			mutate(t, reflect.ValueOf(changed).Elem(), strings.Split(key, "."))
		} else {
			changed.Hardware.Backend = "auto"
		}
		if reflect.DeepEqual(base, changed) {
			t.Errorf("%s: could not change it in the test", key)
			continue
		}
		run, pending := restartOnly(base, changed)
		var parts []string
		for _, p := range d.parts() {
			if p.changed(base, run) {
				parts = append(parts, p.name)
			}
		}
		if len(parts) == 0 && len(pending) == 0 && !slices.Contains(appliedLive, key) {
			t.Errorf("%s: a change restarts no part, is not applied by the reload and is not reported as needing a restart", key)
		}
		if len(pending) > 0 && !slices.ContainsFunc(pending, func(p string) bool { return strings.HasPrefix(p, key) || strings.HasPrefix(p, "hardware.sim") }) {
			t.Errorf("%s: reported as %q", key, pending)
		}
	}
}

// leafKeys lists the TOML keys of t's fields that hold values.
func leafKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+name, ".")
		if f.Type.Kind() == reflect.Struct && !f.Type.Implements(textMarshaler) && !reflect.PointerTo(f.Type).Implements(textMarshaler) {
			out = append(out, leafKeys(f.Type, key)...)
			continue
		}
		out = append(out, key)
	}
	return out
}

// mutate changes the field at path in v to another value of its type.
func mutate(t *testing.T, v reflect.Value, path []string) {
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
		if name != path[0] {
			continue
		}
		f := v.Field(i)
		if len(path) > 1 {
			mutate(t, f, path[1:])
			return
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16, reflect.Uint32, reflect.Uint8:
			if f.CanInt() {
				f.SetInt(f.Int() + 1)
			} else {
				f.SetUint(f.Uint() + 1)
			}
		case reflect.Float64:
			f.SetFloat(f.Float() + 0.1)
		case reflect.Slice:
			f.Set(reflect.Append(f, reflect.Zero(f.Type().Elem())))
		case reflect.Interface:
			f.Set(reflect.ValueOf(int64(0x3f)))
		case reflect.Struct: // a value type such as Duration or Size: its number
			for j := range f.NumField() {
				if n := f.Field(j); n.CanSet() && n.CanInt() {
					n.SetInt(n.Int() + int64(time.Second))
					return
				}
			}
			t.Errorf("%s: cannot change a %s", path[0], f.Type())
		default:
			t.Errorf("%s: cannot change a %s", path[0], f.Kind())
		}
		return
	}
	t.Errorf("no field %q", path[0])
}
