package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// fakeDaemon answers the status and paths routes from fixed values and
// records the power requests it gets.
type fakeDaemon struct {
	status   api.Status
	paths    map[string]string
	requests []string
}

func (f *fakeDaemon) serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "control.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { api.Reply(w, 200, f.status) })
	mux.HandleFunc("POST /v1/power/{op}", func(w http.ResponseWriter, r *http.Request) {
		var req api.PowerRequest
		json.NewDecoder(r.Body).Decode(&req)
		b, _ := json.Marshal(req)
		f.requests = append(f.requests, r.PathValue("op")+" "+string(b))
		if r.PathValue("op") == "paths" {
			api.Reply(w, 200, api.PowerPaths{Paths: f.paths})
			return
		}
		api.Reply(w, 200, api.Changes{})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func yes(b bool) *bool { return &b }

// The status lines whose values the emulated boards cannot produce, each
// as the official tool prints it (burtyb/clusterhat-image
// files/usr/sbin/clusterctrl at dd66f59ffe9e6e981288c9a49b0affbb7ca0c751):
// a forced HAT version (lines 397-402, 763-767: clusterhat is the forced
// string, identity NA, hat_pid rather than hat_product_id), a Pi 5 (line
// 778), throttling unknown without vcgencmd (lines 216-218: NA), a v2.0
// HAT whose hub bit reads 1 for on (lines 785-786), firmware 1.6 with its
// fan status as 8 binary digits (lines 824-827), firmware 1.10 as Python
// prints float("1.10"), 1.1 (line 805), and a board without readings
// ("ctrl21:FW:2.0 ", the space before an empty info kept, line 828).
func TestClusterctrlStatusFormats(t *testing.T) {
	wl := 0
	fan := 0b00000101
	f := &fakeDaemon{status: api.Status{Power: api.Power{Stagger: "1s", Head: api.Head{Pi5: true, Revision: "0x00d04170"},
		Boards: []api.PowerBoard{
			{Kind: "clusterhat", Model: "ClusterHAT v2.0", State: "ok", First: 1, Count: 3, Major: 2, Minor: 0, Forced: "2.0", Chip: "XRA1200P",
				Alert: yes(true), Hub: yes(true), WP: yes(false), LEDs: yes(false), WPLink: &wl},
			{Kind: "clusterctrl", Model: "ClusterCTRL Triple", State: "ok", First: 4, Count: 1, Order: 7, Bus: 3, FirmwareMajor: 1, FirmwareMinor: 6,
				FanStatus: &fan, Voltages: []api.Voltage{{ADC: 1, Type: 1, Raw: 1000}}},
			{Kind: "clusterctrl", Model: "ClusterCTRL pHAT", State: "ok", First: 5, Count: 1, Order: 21, Bus: 4, FirmwareMajor: 2, FirmwareMinor: 0},
			{Kind: "clusterctrl", Model: "ClusterCTRL Single", State: "ok", First: 6, Count: 1, Order: 30, Bus: 5, FirmwareMajor: 1, FirmwareMinor: 10,
				Temperature: &api.Reading{Raw: 300}},
		},
		Nodes: []api.Node{{Name: "p1", Powered: yes(true)}, {Name: "p2", Powered: yes(false)}, {Name: "p3"}, {Name: "p4", Powered: yes(true)},
			{Name: "p5", Powered: yes(false)}, {Name: "p6", Powered: yes(false), USBBoot: yes(true)}, {Name: "p9", State: "unknown"}}}}}
	sock := f.serve(t)
	var out bytes.Buffer
	p := &personality{prog: "clusterctrl", args: []string{"status"}, out: &out, errOut: &out, socket: sock}
	if code := p.run(context.Background()); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	want := `clusterhat:2.0
clusterctrl:3
maxpi:6
pirevision:0x00d04170
throttled:NA
ctrl_bus:7:3:1 21:4:1 30:5:1 
hat_version:2.0
hat_version_major:2
hat_version_minor:0
hat_size:3
hat_uuid:NA
hat_vendor:NA
hat_pid:NA
hat_force:2.0
is_pi5:True
hat_alert:1
hat_hub:1
hat_wp:0
hat_led:0
hat_wplink:0
hat_xra1200p:True
p1:1
p2:0
p3:0
ctrl7:FW:1.6 ADC1:6445mV FAN:00000101
p4:1
ctrl21:FW:2.0 
p5:0
ctrl30:FW:1.1 T1:43.44C
p6:0
u6:1
`
	if out.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", out.String(), want)
	}
}

// init's rpiboot links (lines 553-575): with LINK=1, as root, and both
// directories there, an old link of a listed node into nfs/ goes and every
// node with a path gets boot/<path> -> nfs/pN/boot/firmware/ (boot/ where
// there is no firmware directory); other links stay.
func TestClusterctrlInitLinks(t *testing.T) {
	root := t.TempDir()
	boot, nfs := filepath.Join(root, "boot")+"/", filepath.Join(root, "nfs")+"/"
	for _, d := range []string{boot, nfs + "p1/boot/firmware", nfs + "p2/boot", nfs + "p3/boot"} {
		os.MkdirAll(d, 0o755)
	}
	defaults := filepath.Join(root, "default-clusterctrl")
	os.WriteFile(defaults, []byte("# comment\nTYPE=cnat\n  Link = \"1\" # make links\n"), 0o644)
	os.Symlink(nfs+"p2/boot", boot+"1-1.9") // p2's old place: removed
	os.Symlink(nfs+"p3/boot", boot+"1-1.8") // p3 is not listed: kept
	f := &fakeDaemon{paths: map[string]string{"p1": "1-1.3.4", "p2": "1-1.3.3", "p4": ""},
		status: api.Status{Power: api.Power{Boards: []api.PowerBoard{{Kind: "clusterhat", State: "ok", First: 1, Count: 4, Major: 2, Minor: 5}}}}}
	sock := f.serve(t)
	var out bytes.Buffer
	uid := 1000
	p := &personality{prog: "clusterctrl", args: []string{"init"}, out: &out, errOut: &out, socket: sock,
		defaults: defaults, nfsboot: boot, nfsroot: nfs, euid: func() int { return uid }}
	p.run(context.Background())
	if _, err := os.Lstat(boot + "1-1.3.4"); err == nil {
		t.Fatal("links made by a user who is not root")
	}
	uid = 0
	if code := p.run(context.Background()); code != 0 || out.Len() != 0 {
		t.Fatalf("init: exit %d, %q", code, out.String())
	}
	for link, want := range map[string]string{"1-1.3.4": nfs + "p1/boot/firmware/", "1-1.3.3": nfs + "p2/boot/", "1-1.8": nfs + "p3/boot"} {
		if got, err := os.Readlink(boot + link); err != nil || got != want {
			t.Errorf("%s -> %q %v, want %q", link, got, err, want)
		}
	}
	if _, err := os.Lstat(boot + "1-1.9"); err == nil {
		t.Error("p2's old link is still there")
	}
	// LINK=0: nothing.
	os.WriteFile(defaults, []byte("LINK=0\n"), 0o644)
	os.Remove(boot + "1-1.3.4")
	p.run(context.Background())
	if _, err := os.Lstat(boot + "1-1.3.4"); err == nil {
		t.Error("a link made with LINK=0")
	}
}
