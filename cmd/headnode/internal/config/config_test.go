package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The commented default file is what `headnode config default` prints; it
// must say exactly what the built-in defaults are.
func TestDefaultTextIsTheDefault(t *testing.T) {
	c, err := Parse(DefaultText(), "default.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Path = "default.toml"
	if diff := cmp.Diff(want, c, cmpopts.IgnoreUnexported(Duration{}, Size{})); diff != "" {
		t.Errorf("default.toml differs from Default() (-Default +file):\n%s", diff)
	}
}

func TestEmptyFileIsTheDefault(t *testing.T) {
	c, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.UplinkInterface != "auto" || c.Network.ClusterInterface != "auto" || c.Power.Stagger.Duration != time.Second {
		t.Errorf("empty file: %+v", c)
	}
}

func TestLoadMissingDefaultFileGivesDefaults(t *testing.T) {
	if _, err := os.Stat(DefaultPath); err == nil {
		t.Skip(DefaultPath + " exists on this machine")
	}
	c, err := Load(DefaultPath)
	if err != nil || c.Path != "" {
		t.Fatalf("Load(default path) = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "named.toml")); err == nil {
		t.Error("a named file that does not exist loaded without error")
	}
}

func TestValuesOverrideDefaults(t *testing.T) {
	c, err := Parse([]byte(`
[network]
uplink_interface = "wlan0"
cluster_address = ""
[power]
stagger = "250ms"
[[nodes]]
name = "p1"
address = "192.168.50.11"
[[nodes]]
name = "p2"
[lcd]
address = 0x3f
[http]
listen = ["[::1]:9180"]
`), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Network.UplinkInterface != "wlan0" || c.Network.ClusterInterface != "auto" {
		t.Errorf("network %+v", c.Network)
	}
	if _, ok := c.Network.ClusterPrefix(); ok {
		t.Error("empty cluster_address still gives a prefix")
	}
	if c.Power.Stagger.Duration != 250*time.Millisecond {
		t.Errorf("stagger %v", c.Power.Stagger)
	}
	if len(c.Nodes) != 2 || c.Nodes[1].Name != "p2" {
		t.Errorf("nodes %+v", c.Nodes)
	}
	if a, err := c.LCD.I2CAddress(); err != nil || a != 0x3f {
		t.Errorf("lcd address %v, %v", a, err)
	}
	if len(c.HTTP.Listen) != 1 {
		t.Errorf("listen list not replaced: %v", c.HTTP.Listen)
	}
}

func problems(t *testing.T, doc string) []string {
	t.Helper()
	_, err := Parse([]byte(doc), "c.toml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("Parse(%q) error %v is not a *config.Error", doc, err)
	}
	return ce.Problems()
}

func TestErrorsNameFileLineKeyAndWhatIsValid(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{"[network]\nuplink_interface = \"br0\"\n", []string{
			`c.toml:2: network.uplink_interface: "br0" is the cluster bridge (bridge.name); the uplink must be a different interface (or "auto")`,
		}},
		{"[dhcp]\nquiet = \"0s\"\n", []string{
			`c.toml:2: dhcp.quiet: 0s is out of range; use 1s to 1h0m0s`,
		}},
		{"[network]\n\nuplnk_interface = \"eth1\"\n", []string{`c.toml:3: unknown key "network.uplnk_interface"; valid keys are listed by ` + "`headnode config default`"}},
		{"[power]\ni2c_bus = \"one\"\n", []string{`c.toml:2: power.i2c_bus: expected a whole number, got a TOML string`}},
		{"[power]\nstagger = \"2m\"\nboard = \"hat\"\n", []string{
			`c.toml:2: power.stagger: 2m0s is out of range; use 0s to 1m0s`,
			`c.toml:3: power.board: "hat" is not valid; use "auto", "clusterhat", "clusterctrl" or "none"`,
		}},
		{"[network]\ncluster_address = \"192.168.50.0/24\"\nuplink_interface = \"eth0\"\ncluster_interface = \"eth0\"\n", []string{
			`c.toml:3: network.uplink_interface: "eth0" is also the cluster interface; the uplink must be a different interface (or "auto")`,
			`c.toml:2: network.cluster_address: "192.168.50.0/24" is the network address of 192.168.50.0/24 itself; give the head node's own address, e.g. 192.168.50.1/24`,
		}},
		{"[[nodes]]\nname = \"p1\"\n[[nodes]]\nname = \"p1\"\naddress = \"10.0.0.300\"\n", []string{
			`c.toml:4: nodes[1].name: "p1" is already used by nodes[0]`,
			`c.toml:5: nodes[1].address: "10.0.0.300" is not an IPv4 address, e.g. "192.168.50.11"`,
		}},
		{"[lcd]\naddress = \"0x99\"\nsize = \"40x4\"\n[led]\nbrightness = 1.5\n", []string{
			`c.toml:2: lcd.address: 0x99 is out of range; I2C addresses are 0x03-0x77 (typical LCDs: 0x27, 0x3f)`,
			`c.toml:3: lcd.size: "40x4" is not valid; use "16x2", "20x2", "16x4" or "20x4"`,
			`c.toml:5: led.brightness: 1.5 is out of range; use 0.0 to 1.0`,
		}},
		{"[http]\nlisten = [\n  \"127.0.0.1:9180\",\n  \"localhost\",\n]\n", []string{
			`c.toml:4: http.listen[1]: "localhost" is not an address:port, e.g. "127.0.0.1:9180", "[::1]:9180" or "cluster:9180" (the cluster address)`,
		}},
		{"[control]\ngroup = \"wheel users\"\n", []string{
			`c.toml:2: control.group: "wheel users" is not a group name (letters, digits, '_', '-', '.', not starting with '-'), e.g. "headnode", or "" for root only`,
		}},
		{"[hardware]\ni2c_trace = \"i2c.jsonl\"\nhid_trace = \"/var/log/headnode/hid.jsonl\"\n", []string{
			`c.toml:2: hardware.i2c_trace: "i2c.jsonl" is not an absolute path, e.g. "/var/log/headnode/i2c.jsonl", or "" for off`,
		}},
		{"[http]\nhosts = [\"head.example.net\", \"192.168.1.5\", \"bad_name\"]\n", []string{
			`c.toml:2: http.hosts[1]: "192.168.1.5" is not a host name (letters, digits, '-' and '.'), e.g. "head.example.net"; addresses need no entry`,
			`c.toml:2: http.hosts[2]: "bad_name" is not a host name (letters, digits, '-' and '.'), e.g. "head.example.net"; addresses need no entry`,
		}},
		{"[led]\nenabled = \"yes\"\n", []string{`c.toml:2: led.enabled: expected true or false, got a TOML string`}},
		{"[network]\nfirewall = \"ufw\"\n", []string{`c.toml:2: network.firewall: "ufw" is not valid; use "auto", "iptables-nft", "iptables-legacy" or "nftables"`}},
		{"[network]\nfirewall = \"nftables\"\niptables = \"legacy\"\n", []string{`c.toml:3: network.iptables: "legacy" contradicts network.firewall = "nftables"; keep only network.firewall`}},
		{"[network\n", []string{`c.toml:1: expected ']' to close table name`}},
	} {
		got := problems(t, tc.doc)
		if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.doc, diff)
		}
		for _, p := range got {
			if strings.Contains(p, "\n") {
				t.Errorf("problem spans lines: %q", p)
			}
		}
	}
}

func TestNodeAddress(t *testing.T) {
	c, err := Parse([]byte("[[nodes]]\nname = \"p2\"\naddress = \"192.168.50.99\"\n[network]\ncluster_address = \"192.168.50.1/24\"\n"), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]string{1: "192.168.50.11", 2: "192.168.50.99", 4: "192.168.50.14"} {
		if a, ok := c.NodeAddress(n); !ok || a.String() != want {
			t.Errorf("p%d: %v %v, want %s", n, a, ok, want)
		}
	}
	if _, ok := c.NodeAddress(300); ok {
		t.Error("p300 outside a /24 got an address")
	}
	c.Network.ClusterAddress = ""
	if _, ok := c.NodeAddress(1); ok {
		t.Error("an address without a cluster subnet")
	}
}

func TestPowerKeyErrors(t *testing.T) {
	got := problems(t, "[power]\nhat_address = 0x24\nhat_version = \"4.0\"\nprobe = \"udp:53\"\nprobe_interval = \"2s\"\ndown_after = \"1s\"\n[hardware.sim]\nboard = \"turingpi\"\nrevision = \"two\"\nchip = \"mcp23008\"\nctrl = [\"triple\", \"quad\"]\n")
	want := []string{
		`c.toml:2: power.hat_address: 0x24 is out of range; the ClusterHAT expander is at 0x20-0x23 (XA0/XA1 jumpers)`,
		`c.toml:3: power.hat_version: "4.0" is not a ClusterHAT version; use major.minor such as "1.3", "2.5" or "3.1" (or "" to read the HAT EEPROM)`,
		`c.toml:4: power.probe: "udp:53" is not valid; use "icmp", "tcp:PORT" (e.g. "tcp:22") or "none"`,
		`c.toml:6: power.down_after: 1s is shorter than power.probe_interval (2s); a node would count as unreachable between two probes`,
		`c.toml:8: hardware.sim.board: "turingpi" is not valid; use "clusterhat", "clusterctrl", "clusterhat+clusterctrl" or "none"`,
		`c.toml:9: hardware.sim.revision: "two" is not a ClusterHAT version; use major.minor such as "1.3", "2.5" or "3.1"`,
		`c.toml:10: hardware.sim.chip: "mcp23008" is not valid; use "xra1200p" or "pca9554"`,
		`c.toml:11: hardware.sim.ctrl[1]: "quad" is not valid; use "single", "phat", "triple", "a+6" or "stack"`,
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p := problems(t, "[power]\nprobe = \"tcp:99999\"\n"); len(p) != 1 || !strings.Contains(p[0], `"tcp:99999" has no valid port; write it like "tcp:22"`) {
		t.Errorf("tcp port: %q", p)
	}
	got = problems(t, "[power]\nhat_size = 5\nhub_polarity = \"inverted\"\nhat_usb_path = \"usb1/1\"\nfan_gpio = 40\n[hardware.sim]\npi = \"3\"\n")
	want = []string{
		`c.toml:2: power.hat_size: 5 is out of range; a ClusterHAT has 1-4 nodes`,
		`c.toml:3: power.hub_polarity: "inverted" is not valid; use "auto" (the official tool's rule), "high" (1 = hub on) or "low" (0 = hub on)`,
		`c.toml:4: power.hat_usb_path: "usb1/1" is not a USB path; write it as the kernel names the port, e.g. "1-1.2"`,
		`c.toml:5: power.fan_gpio: 40 is out of range; use a BCM GPIO line 0-27, or -1 for no fan`,
		`c.toml:7: hardware.sim.pi: "3" is not valid; use "4" (a Pi 4 Model B) or "5"`,
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The firewall key chooses the backend; the older iptables key still does
// when firewall is "auto", and agreeing values of both are fine.
func TestFirewallChoice(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"", "auto"},
		{"[network]\nfirewall = \"nftables\"\n", "nftables"},
		{"[network]\niptables = \"nft\"\n", "iptables-nft"},
		{"[network]\niptables = \"legacy\"\n", "iptables-legacy"},
		{"[network]\niptables = \"/opt/xt/iptables\"\n", "/opt/xt/iptables"},
		{"[network]\nfirewall = \"iptables-legacy\"\niptables = \"legacy\"\n", "iptables-legacy"},
		{"[network]\nfirewall = \"iptables-nft\"\n", "iptables-nft"},
	} {
		c, err := Parse([]byte(tc.doc), "c.toml")
		if err != nil {
			t.Errorf("%q: %v", tc.doc, err)
			continue
		}
		if got := c.Network.FirewallChoice(); got != tc.want {
			t.Errorf("%q: firewall choice %q, want %q", tc.doc, got, tc.want)
		}
	}
}
