package main

// End-to-end tests of the clusterctrl personality: the binary run as
// clusterctrl, against the daemon on each emulated board, every official
// command, checked by what it prints, its exit code and what the emulated
// chips then hold (the state the emulated boards save on every change).
//
// The expected texts are the official tool's, burtyb/clusterhat-image
// files/usr/sbin/clusterctrl at dd66f59ffe9e6e981288c9a49b0affbb7ca0c751
// (line numbers are that file's), written out by hand from its source for
// the emulated machine: a Pi 4 Model B (revision c03114, not throttled)
// whose HAT EEPROM says uuid 622aef87-17d6-4022-a370-781e1c3fe2b9, vendor
// 8086 Consultancy, product id 0x0004, and ClusterCTRL boards with
// firmware 1.8 (burtyb/ClusterCTRL src/main.c at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b) whose 5 V ADCs read 791 (5098
// mV by the tool's conversion, line 814), the Stack's input 360 (12002
// mV, line 817) and the temperature sensor 277 (24.59 °C, line 822).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	emuctrl "github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/hw/emu/expander"
)

// clusterctrlBinary is the binary under the official tool's name.
func clusterctrlBinary(t *testing.T) string {
	t.Helper()
	link := filepath.Join(filepath.Dir(binary), "clusterctrl")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(binary, link); err != nil {
			t.Fatal(err)
		}
	}
	return link
}

// cc runs `clusterctrl args...` against the daemon configured in cfg.
func cc(t *testing.T, cfg string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(clusterctrlBinary(t), args...)
	cmd.Env = append(os.Environ(), "HEADNODE_CONFIG="+cfg)
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if len(ee.Stderr) > 0 {
			t.Errorf("clusterctrl %s wrote to stderr: %s", strings.Join(args, " "), ee.Stderr)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// chips is what the emulated boards hold: the state they save on every
// change (hw/emu/boards).
type chips struct {
	Expander *expander.State       `json:"expander"`
	Pins     map[int][2]bool       `json:"pins"`
	CTRL     map[int]emuctrl.State `json:"ctrl"`
}

func readChips(t *testing.T, tp *topo) chips {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tp.dir, "state", "sim", "boards.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c chips
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ocr is the expander's output latch; after init every pin drives it.
func (c chips) ocr() byte { return c.Expander.Regs[expander.RegOutput] }

// v1 is the levels of the v1 HAT's lines ALERT, P1-P4 ("10000").
func (c chips) v1() string {
	var b strings.Builder
	for _, n := range []int{5, 6, 13, 19, 26} {
		p := c.Pins[n]
		b.WriteByte("01"[b2i(p[0] && p[1])])
	}
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ctrlPower is a ClusterCTRL's node power pins, P1 first ("010").
func (c chips) ctrlPower(bus, nodes int) string {
	var b strings.Builder
	for n := range nodes {
		b.WriteByte("01"[c.CTRL[bus].PowerPins>>n&1])
	}
	return b.String()
}

type ccStep struct {
	args []string
	out  string // exactly, "" for nothing
	code int
	// check returns what is wrong with the chips after the step, or "".
	check func(c chips) string
}

// ccBoard runs the daemon on one emulated machine and steps through the
// personality's commands.
func ccBoard(t *testing.T, sim, power string, steps []ccStep) (*topo, string) {
	t.Helper()
	tp := newTopo(t, true)
	cfg := tp.config(t, fmt.Sprintf(`
[power]
stagger = "50ms"
probe = "none"
%s
[hardware]
backend = "sim"

[hardware.sim]
%s
`, power, sim))
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "the boards", func(s *api.Status) bool {
		if len(s.Power.Boards) == 0 {
			return false
		}
		for _, b := range s.Power.Boards {
			if b.State != "ok" || (b.Kind == "clusterctrl" && b.Voltages == nil && b.Model != "ClusterCTRL Single" && b.Model != "ClusterCTRL pHAT") {
				return false
			}
		}
		return true
	})
	for _, s := range steps {
		out, code := cc(t, cfg, s.args...)
		if out != s.out || code != s.code {
			t.Errorf("clusterctrl %s: exit %d, printed\n%s\nwant exit %d and\n%s", strings.Join(s.args, " "), code, out, s.code, s.out)
		}
		if s.check != nil {
			if msg := s.check(readChips(t, tp)); msg != "" {
				t.Errorf("clusterctrl %s: %s", strings.Join(s.args, " "), msg)
			}
		}
	}
	return tp, cfg
}

const hatIdentity = `hat_uuid:622aef87-17d6-4022-a370-781e1c3fe2b9
hat_vendor:8086 Consultancy
hat_product_id:0x0004
is_pi5:False
`

// The head of every status (lines 739-750): clusterhat is 1 when the HAT
// EEPROM names a ClusterHAT, False otherwise; clusterctrl the number of
// ClusterCTRL devices or False; then maxpi, the revision from
// /proc/device-tree/system/linux,revision as 0x and hex, and throttled.
func statusHead(hat, ctrl string, maxpi int) string {
	return fmt.Sprintf("clusterhat:%s\nclusterctrl:%s\nmaxpi:%d\npirevision:0x00c03114\nthrottled:0x0\n", hat, ctrl, maxpi)
}

// badInput are the refusals every board gives, each changing nothing.
func badInput(maxpi int) []ccStep {
	valid := fmt.Sprintf("ERROR: Valid options are p1-p%d\n", maxpi)
	return []ccStep{
		// Lines 650-654: every token is checked before anything is done.
		{args: []string{"on", "p1", fmt.Sprintf("p%d", maxpi+1)}, out: valid, code: 1},
		{args: []string{"off", "node1"}, out: valid, code: 1},
		{args: []string{"alert", "on", "p0"}, out: valid, code: 1},
		{args: []string{"getpath", "p99"}, out: valid, code: 1},
		{args: []string{"usbboot", "on", "px"}, out: valid, code: 1},
		// Line 1093: anything else, wrong argument counts included.
		{args: []string{"frobnicate"}, out: "Error: Missing arguments\n"},
		{args: []string{"hub"}, out: "Error: Missing arguments\n"},
		{args: []string{"alert", "blink"}, out: "Error: Missing arguments\n"},
		{args: []string{"status", "now"}, out: "Error: Missing arguments\n"},
		// Lines 968-1051: orders out of range; exit 1 for save,
		// savedefaults and reset, not for the others.
		{args: []string{"save", "0"}, out: "Invalid order\n", code: 1},
		{args: []string{"savedefaults", "256"}, out: "Invalid order\n", code: 1},
		{args: []string{"reset", "0"}, out: "Invalid order\n", code: 1},
		{args: []string{"setorder", "0", "5"}, out: "Invalid order old\n", code: 1},
		{args: []string{"setorder", "5", "300"}, out: "Invalid order new\n", code: 1},
		{args: []string{"saveorder", "300"}, out: "Invalid order\nError: Unable to find Cluster CTRL device with that order\n"},
		{args: []string{"savepos", "99"}, out: "Error: Unable to find Cluster CTRL device with that order\n"},
		{args: []string{"saveusbboot", "99"}, out: "Error: Unable to find Cluster CTRL device with that order\n"},
		{args: []string{"reset", "99"}, out: "Error: Unable to find Cluster CTRL device with that order\n"},
		{args: []string{"save", "x"}, out: "ERROR: \"x\" is not a number\n", code: 1},
	}
}

func TestE2EClusterctrlOnClusterHATv1(t *testing.T) {
	off := func(want string) func(c chips) string {
		return func(c chips) string {
			if got := c.v1(); got != want {
				return fmt.Sprintf("lines ALERT P1-P4 %s, want %s", got, want)
			}
			return ""
		}
	}
	steps := []ccStep{
		// v1 (lines 779-782): hat_alert and p1-p4 from the GPIO levels.
		{args: []string{"status"}, out: statusHead("1", "False", 4) + "hat_version:1.3\nhat_version_major:1\nhat_version_minor:3\nhat_size:4\n" + hatIdentity +
			"hat_alert:0\np1:0\np2:0\np3:0\np4:0\n", check: off("00000")},
		{args: []string{"maxpi"}, out: "4\n"},
		{args: []string{"on", "p2", "p4"}, check: off("00101")},
		{args: []string{"alert", "on"}, check: off("10101")},
		{args: []string{"alert", "off", "p3"}, check: off("00101")},
		{args: []string{"off"}, check: off("00000")},
		// Bulk on lights ALERT meanwhile and puts it back (lines 588-601).
		{args: []string{"on"}, check: off("01111")},
		{args: []string{"off", "p1"}, check: off("00111")},
		// Lines 838-841: the message, exit 0.
		{args: []string{"hub", "on"}, out: "ERROR: hub control not supported on Cluster HAT v1.x\n\n", check: off("00111")},
		// No LED, WP, hub reset, fan, ACT or USBBOOT on a v1: nothing.
		{args: []string{"led", "off"}, check: off("00111")},
		{args: []string{"wp", "off"}},
		{args: []string{"hub", "reset"}},
		{args: []string{"act", "on"}},
		{args: []string{"usbboot", "on", "p1"}},
		{args: []string{"setorder", "20", "21"}},
		{args: []string{"fan", "on"}},
		// Lines 255-257: the configured hub path (CLUSTERHATV1), P1 on
		// its port 4.
		{args: []string{"getpath"}, out: "p1:1-1.2.4\np2:1-1.2.3\np3:1-1.2.2\np4:1-1.2.1\n"},
		{args: []string{"getpath", "p3"}, out: "p3:1-1.2.2\n"},
		{args: []string{"init"}, check: off("00111")},
		{args: []string{"status"}, out: statusHead("1", "False", 4) + "hat_version:1.3\nhat_version_major:1\nhat_version_minor:3\nhat_size:4\n" + hatIdentity +
			"hat_alert:0\np1:0\np2:1\np3:1\np4:1\n"},
	}
	ccBoard(t, `board = "clusterhat"
revision = "1.3"`, `hat_usb_path = "1-1.2"`, append(steps, badInput(4)...))
}

// fanLine checks the head node's fan line, GPIO18.
func fanLine(on bool) func(c chips) string {
	return func(c chips) string {
		if p := c.Pins[18]; !p[0] || p[1] != on {
			return fmt.Sprintf("GPIO18 (the fan) output %v level %v, want driven %v", p[0], p[1], on)
		}
		return ""
	}
}

// The v2.x HAT after init: P1-P4 off (the power-on-state link), ALERT off,
// LED on, the hub on (bit 5 low from v2.1 on), write-protect on: output
// latch 0x90 (lines 474-507).
func TestE2EClusterctrlOnClusterHATv2(t *testing.T) {
	ocr := func(want byte) func(c chips) string {
		return func(c chips) string {
			if got := c.ocr(); got != want {
				return fmt.Sprintf("expander output %#02x, want %#02x", got, want)
			}
			return ""
		}
	}
	status := func(alert, hub, wp, led int, nodes string) string {
		s := statusHead("1", "False", 4) + "hat_version:2.5\nhat_version_major:2\nhat_version_minor:5\nhat_size:4\n" + hatIdentity
		// Lines 783-796: hat_hub is logical (inverted from bit 5 but on
		// v2.0), then wp, led (v2 only), wplink, the chip.
		s += fmt.Sprintf("hat_alert:%d\nhat_hub:%d\nhat_wp:%d\nhat_led:%d\nhat_wplink:0\nhat_xra1200p:True\n", alert, hub, wp, led)
		for i, c := range nodes {
			s += fmt.Sprintf("p%d:%c\n", i+1, c)
		}
		return s
	}
	steps := []ccStep{
		{args: []string{"status"}, out: status(0, 1, 1, 1, "0000"), check: ocr(0x90)},
		{args: []string{"on", "p1", "p3"}, check: ocr(0x95)},
		{args: []string{"alert", "on", "p2"}, check: ocr(0xD5)},
		{args: []string{"alert", "off"}, check: ocr(0x95)},
		{args: []string{"led", "off"}, check: ocr(0x85)},
		{args: []string{"led", "on"}, check: ocr(0x95)},
		{args: []string{"hub", "off"}, check: ocr(0xB5)},
		{args: []string{"status"}, out: status(0, 0, 1, 1, "1010")},
		{args: []string{"hub", "on"}, check: ocr(0x95)},
		{args: []string{"hub", "reset"}, check: ocr(0x95)},
		{args: []string{"wp", "off"}, check: ocr(0x15)},
		{args: []string{"wp", "on"}, check: ocr(0x95)},
		{args: []string{"on"}, check: ocr(0x9F)},
		{args: []string{"off", "p4", "p2"}, check: ocr(0x95)},
		{args: []string{"off"}, check: ocr(0x90)},
		// The hub is the only one with the ClusterHAT's USB IDs: P1 on
		// its port 4 (lines 259-303).
		{args: []string{"getpath"}, out: "p1:1-1.3.4\np2:1-1.3.3\np3:1-1.3.2\np4:1-1.3.1\n", check: ocr(0x90)},
		{args: []string{"usbboot", "on", "p1"}},
		{args: []string{"act", "off"}},
		// The head node's fan (FANGPIO, lines 1056-1060 and 1072-1077).
		{args: []string{"fan", "on"}, check: fanLine(true)},
		{args: []string{"fan", "off", "c"}, check: fanLine(false)},
		{args: []string{"fan", "on", "c"}, check: fanLine(true)},
		{args: []string{"fan", "off", "20"}, check: fanLine(true)},
		{args: []string{"init"}, check: ocr(0x90)},
	}
	ccBoard(t, `board = "clusterhat"
revision = "2.5"`, "fan_gpio = 18", append(steps, badInput(4)...))
}

// A bridged WP link: found at init (input bit 7 high without its pull-up),
// so WP is left to the link and `wp off` is refused (lines 477-481,
// 960-961).
func TestE2EClusterctrlWPLink(t *testing.T) {
	status := statusHead("1", "False", 4) + "hat_version:2.2\nhat_version_major:2\nhat_version_minor:2\nhat_size:4\n" + hatIdentity +
		"hat_alert:0\nhat_hub:1\nhat_wp:1\nhat_led:1\nhat_wplink:1\nhat_xra1200p:True\np1:0\np2:0\np3:0\np4:0\n"
	ccBoard(t, `board = "clusterhat"
revision = "2.2"
wp_link = true`, "", []ccStep{
		{args: []string{"status"}, out: status},
		{args: []string{"wp", "off"}, out: "Unable to disable EEPROM WP (Solder link set)\n", check: func(c chips) string {
			if c.ocr()&0x80 == 0 || c.Expander.Regs[expander.RegPullUp] != 0xFF {
				return fmt.Sprintf("output %#02x pull-ups %#02x: WP or the pull-ups changed", c.ocr(), c.Expander.Regs[expander.RegPullUp])
			}
			return ""
		}},
		{args: []string{"status"}, out: status},
	})
}

// v3.x: no LED bit (no hat_led line), the WP switch only on v2 (lines 954-
// 956); a PCA9554 cannot test the WP link (-1) and is no XRA1200P; v3.1
// wires Px to hub port x (line 300).
func TestE2EClusterctrlOnClusterHATv3(t *testing.T) {
	ocr := func(want byte) func(c chips) string {
		return func(c chips) string {
			if got := c.ocr(); got != want {
				return fmt.Sprintf("expander output %#02x, want %#02x", got, want)
			}
			return ""
		}
	}
	status := func(nodes string) string {
		s := statusHead("1", "False", 4) + "hat_version:3.1\nhat_version_major:3\nhat_version_minor:1\nhat_size:4\n" + hatIdentity +
			"hat_alert:0\nhat_hub:1\nhat_wp:1\nhat_wplink:-1\nhat_xra1200p:False\n"
		for i, c := range nodes {
			s += fmt.Sprintf("p%d:%c\n", i+1, c)
		}
		return s
	}
	steps := []ccStep{
		{args: []string{"status"}, out: status("0000"), check: ocr(0x90)},
		{args: []string{"wp", "off"}, check: ocr(0x90)},
		{args: []string{"led", "off"}, check: ocr(0x90)},
		{args: []string{"on", "p4"}, check: ocr(0x98)},
		{args: []string{"hub", "off"}, check: ocr(0xB8)},
		{args: []string{"hub", "on"}, check: ocr(0x98)},
		{args: []string{"alert", "on"}, check: ocr(0xD8)},
		{args: []string{"getpath", "p1", "p4"}, out: "p1:1-1.3.1\np4:1-1.3.4\n"},
		{args: []string{"alert", "off"}},
		{args: []string{"status"}, out: status("0001")},
	}
	ccBoard(t, `board = "clusterhat"
revision = "3.1"
chip = "pca9554"`, "", append(steps, badInput(4)...))
}

// One ClusterCTRL of each kind, alone at order 20 on bus 11: status
// (lines 798-836: FW and the readings the board has, p and, with USBBOOT
// lines, u), the commands that reach it, and what each leaves on it.
func TestE2EClusterctrlOnEachClusterCTRL(t *testing.T) {
	for _, b := range []struct {
		kind  string
		nodes int
		info  string // after "ctrl20:FW:1.8 "
		usb   bool
		// ctrl path of the board's controller below its hub (GETPATH 0)
		// and each node's (GETPATH n), from its config.c.
		paths string
		fan   bool
		act   bool
	}{
		{"single", 1, "", true, "p1:1-1.4.4\n", false, false},
		{"phat", 2, "", false, "p1:1-1.4.4\np2:1-1.4.3\n", false, false},
		{"triple", 3, "ADC1:5098mV T1:24.59C", true, "p1:1-1.4.4\np2:1-1.4.3\np3:1-1.4.2\n", true, false},
		{"a+6", 5, "ADC1:5098mV ADC2:5098mV T1:24.59C", false, "p1:1-1.4.1\np2:1-1.4.2\np3:1-1.4.3\np4:1-1.4.4.2\np5:1-1.4.4.4\n", true, true},
		{"stack", 5, "ADC1:5098mV ADC2:12002mV T1:24.59C", false, "p1:\np2:\np3:\np4:\np5:\n", true, false},
	} {
		t.Run(b.kind, func(t *testing.T) {
			const bus = 11
			power := func(want string) func(c chips) string {
				return func(c chips) string {
					if got := c.ctrlPower(bus, b.nodes); got != want {
						return fmt.Sprintf("node power %s, want %s", got, want)
					}
					return ""
				}
			}
			status := func(nodes string, usb string) string {
				s := statusHead("False", "1", b.nodes) + fmt.Sprintf("ctrl_bus:20:%d:%d \nctrl20:FW:1.8 %s\n", bus, b.nodes, b.info)
				for i, c := range nodes {
					s += fmt.Sprintf("p%d:%c\n", i+1, c)
					if b.usb {
						s += fmt.Sprintf("u%d:%c\n", i+1, usb[i])
					}
				}
				return s
			}
			all := strings.Repeat("1", b.nodes)
			none := strings.Repeat("0", b.nodes)
			first := "1" + none[1:]
			usbAll := strings.Repeat("1", b.nodes)
			usbFirstOff := "0" + usbAll[1:]
			steps := []ccStep{
				{args: []string{"status"}, out: status(none, usbAll), check: power(none)},
				{args: []string{"maxpi"}, out: fmt.Sprintf("%d\n", b.nodes)},
				{args: []string{"on"}, check: func(c chips) string {
					if msg := power(all)(c); msg != "" {
						return msg
					}
					if c.CTRL[bus].Alert {
						return "ALERT left on after the bulk power-on"
					}
					return ""
				}},
				{args: []string{"off"}, check: power(none)},
				{args: []string{"on", "p1"}, check: power(first)},
				{args: []string{"alert", "on", "p1"}, check: func(c chips) string {
					if c.CTRL[bus].Alert != (b.kind != "stack") { // the Stack has no ALERT LED
						return fmt.Sprintf("ALERT %v", c.CTRL[bus].Alert)
					}
					return ""
				}},
				{args: []string{"alert", "off"}, check: func(c chips) string {
					if c.CTRL[bus].Alert {
						return "ALERT on"
					}
					return ""
				}},
				// led on never powers a node on, the pHAT's and Single's
				// firmware quirk notwithstanding.
				{args: []string{"led", "off"}, check: func(c chips) string {
					if c.CTRL[bus].LEDPins != 0 || c.CTRL[bus].PwrLED {
						return fmt.Sprintf("LEDs %05b, PWR %v after led off", c.CTRL[bus].LEDPins, c.CTRL[bus].PwrLED)
					}
					return power(first)(c)
				}},
				{args: []string{"led", "on"}, check: func(c chips) string {
					if msg := power(first)(c); msg != "" {
						return msg
					}
					if b.kind != "stack" && c.CTRL[bus].LEDPins != 1 || !c.CTRL[bus].PwrLED {
						return fmt.Sprintf("LEDs %05b, PWR %v after led on with p1 on", c.CTRL[bus].LEDPins, c.CTRL[bus].PwrLED)
					}
					return ""
				}},
				{args: []string{"hub", "on"}, check: power(first)},
				{args: []string{"hub", "reset"}, check: power(first)},
				{args: []string{"usbboot", "off", "p1"}, check: func(c chips) string {
					if got := c.CTRL[bus].USBBootPins&1 == 1; b.usb && got {
						return fmt.Sprintf("P1's USBBOOT line %v after usbboot off", got)
					}
					return ""
				}},
				{args: []string{"fan", "on"}, check: func(c chips) string {
					want := byte(0)
					if b.fan {
						want = 1
					}
					if c.CTRL[bus].FanReq != want {
						return fmt.Sprintf("fan request %d, want %d", c.CTRL[bus].FanReq, want)
					}
					return ""
				}},
				{args: []string{"fan", "off", "20"}, check: func(c chips) string {
					if c.CTRL[bus].FanReq != 0 || c.CTRL[bus].Fan {
						return "fan still on"
					}
					return ""
				}},
				{args: []string{"act", "off"}, check: func(c chips) string {
					if b.act && c.CTRL[bus].ACTLED {
						return fmt.Sprintf("ACT enable %v after act off", c.CTRL[bus].ACTLED)
					}
					return ""
				}},
				{args: []string{"act", "on", "20"}},
				{args: []string{"getpath"}, out: b.paths},
				{args: []string{"status"}, out: status(first, usbFirstOff)},
				// EEPROM saves (lines 968-1038), each printing "saved".
				{args: []string{"savepos", "20"}, out: "saved\n", check: func(c chips) string {
					if c.CTRL[bus].EEPROM.POS != 1 {
						return fmt.Sprintf("power-on state %08b, want p1", c.CTRL[bus].EEPROM.POS)
					}
					return ""
				}},
				{args: []string{"saveusbboot", "20"}, out: "saved\n"},
				{args: []string{"setorder", "20", "42"}, check: func(c chips) string {
					if c.CTRL[bus].Order != 42 || c.CTRL[bus].EEPROM.Order != 20 {
						return fmt.Sprintf("order %d, EEPROM %d", c.CTRL[bus].Order, c.CTRL[bus].EEPROM.Order)
					}
					return ""
				}},
				{args: []string{"saveorder", "42"}, out: "saved\n", check: func(c chips) string {
					if c.CTRL[bus].EEPROM.Order != 42 {
						return fmt.Sprintf("EEPROM order %d", c.CTRL[bus].EEPROM.Order)
					}
					return ""
				}},
				{args: []string{"save", "42"}, out: "saved\n"},
				{args: []string{"on", "p1"}},
				// reset (lines 1040-1051): the controller restarts with its
				// saved power-on state.
				{args: []string{"off", "p1"}, check: power(none)},
				{args: []string{"reset", "42"}, out: "reset\n"},
				{args: []string{"savedefaults", "42"}, out: "saved\n", check: func(c chips) string {
					if e := c.CTRL[bus].EEPROM; e.Order != 20 || e.POS != 0 || e.LED != 0xFF {
						return fmt.Sprintf("EEPROM after savedefaults %+v", e)
					}
					return ""
				}},
				{args: []string{"save", "20"}, out: "Error: Unable to find Cluster CTRL device with that order\n"},
				{args: []string{"init"}},
			}
			tp, cfg := ccBoard(t, fmt.Sprintf(`board = "clusterctrl"
ctrl = [%q]`, b.kind), "", append(steps, badInput(b.nodes)...))
			// After reset the board came up with p1 on (its saved
			// power-on state), which is what the daemon now asks of it.
			c := readChips(t, tp)
			if got := c.ctrlPower(bus, b.nodes); got != first {
				t.Errorf("after reset: node power %s, want %s (the saved power-on state)", got, first)
			}
			if out, code := cc(t, cfg, "status"); code != 0 || !strings.Contains(out, "ctrl_bus:42:11:") || !strings.Contains(out, "\nctrl42:FW:1.8 ") {
				t.Errorf("status after reset (order 42 from the EEPROM):\n%s", out)
			}
		})
	}
}

// A HAT and two ClusterCTRL boards: the official numbering (HAT p1-p4, then
// the boards by order), ctrl_bus, per-board ALERT by node, USBBOOT passing
// the HAT's nodes over, getpath sorted as strings (p10 before p2), and
// setorder renumbering the nodes.
func TestE2EClusterctrlNumbering(t *testing.T) {
	hat := "hat_version:2.5\nhat_version_major:2\nhat_version_minor:5\nhat_size:4\n" + hatIdentity +
		"hat_alert:0\nhat_hub:1\nhat_wp:1\nhat_led:1\nhat_wplink:0\nhat_xra1200p:True\np1:0\np2:0\np3:0\np4:0\n"
	triple := "ctrl20:FW:1.8 ADC1:5098mV T1:24.59C\np5:0\nu5:1\np6:%d\nu6:%d\np7:0\nu7:1\n"
	stack := "ctrl21:FW:1.8 ADC1:5098mV ADC2:12002mV T1:24.59C\np%d:0\np%d:0\np%d:0\np%d:0\np%d:0\n"
	tp, cfg := ccBoard(t, `board = "clusterhat+clusterctrl"
revision = "2.5"
ctrl = ["triple", "stack"]`, "", []ccStep{
		{args: []string{"status"}, out: statusHead("1", "2", 12) + "ctrl_bus:20:11:3 21:12:5 \n" + hat + fmt.Sprintf(triple, 0, 1) + fmt.Sprintf(stack, 8, 9, 10, 11, 12)},
		{args: []string{"alert", "on", "p6"}, check: func(c chips) string {
			if !c.CTRL[11].Alert || c.CTRL[12].Alert || c.ocr()&0x40 != 0 {
				return fmt.Sprintf("ALERT: Triple %v, Stack %v, HAT %v; want the Triple's only", c.CTRL[11].Alert, c.CTRL[12].Alert, c.ocr()&0x40 != 0)
			}
			return ""
		}},
		{args: []string{"alert", "off", "p6", "p1"}, check: func(c chips) string {
			if c.CTRL[11].Alert || c.ocr()&0x40 != 0 {
				return "ALERT left on"
			}
			return ""
		}},
		{args: []string{"on", "p6"}},
		{args: []string{"usbboot", "off", "p1", "p6"}, check: func(c chips) string {
			if c.CTRL[11].USBBootPins != 0b101 {
				return fmt.Sprintf("Triple USBBOOT lines %03b, want 101", c.CTRL[11].USBBootPins)
			}
			return ""
		}},
		{args: []string{"status"}, out: statusHead("1", "2", 12) + "ctrl_bus:20:11:3 21:12:5 \n" + hat + fmt.Sprintf(triple, 1, 0) + fmt.Sprintf(stack, 8, 9, 10, 11, 12)},
		{args: []string{"getpath", "p12", "p2", "p10", "p5"}, out: "p10:\np12:\np2:1-1.3.3\np5:1-1.4.4\n"},
		// The Triple (order 20) becomes 30: the Stack's nodes are p5-p9.
		{args: []string{"setorder", "20", "30"}},
		{args: []string{"status"}, out: statusHead("1", "2", 12) + "ctrl_bus:21:12:5 30:11:3 \n" + hat + fmt.Sprintf(stack, 5, 6, 7, 8, 9) +
			"ctrl30:FW:1.8 ADC1:5098mV T1:24.59C\np10:0\nu10:1\np11:1\nu11:0\np12:0\nu12:1\n"},
		{args: []string{"off", "p11"}, check: func(c chips) string {
			if c.ctrlPower(11, 3) != "000" {
				return "p11 is no longer the Triple's P2"
			}
			return ""
		}},
		{args: []string{"maxpi"}, out: "12\n"},
	})
	// Two boards with one order: the tool refuses every command (lines
	// 543-547).
	if out, code := cc(t, cfg, "setorder", "21", "30"); code != 0 || out != "" {
		t.Fatalf("setorder 21 30: %d %q", code, out)
	}
	want := "ERROR: Duplicate ClusterCTRL 'order' found\nI2C Bus: 11 Order: 30\nI2C Bus: 12 Order: 30\n"
	for _, args := range [][]string{{"status"}, {"on", "p1"}, {"maxpi"}} {
		if out, code := cc(t, cfg, args...); code != 1 || out != want {
			t.Errorf("%v with duplicate orders: exit %d\n%s", args, code, out)
		}
	}
	if c := readChips(t, tp); c.ocr()&0x0F != 0 {
		t.Errorf("a refused on p1 powered a HAT node: %#02x", c.ocr())
	}
}

// Help in each of its spellings (line 44) prints the tool's usage with the
// name it was run by; no daemon is needed.
func TestE2EClusterctrlHelpAndNoDaemon(t *testing.T) {
	want := func(a string) string {
		return "Usage :" + a + " <cmd> \n\n## Commands <cmd>\n\n# <devices> can be a single device 'p1' or a list 'p2 p3 p5'\n" +
			"# <order> is the order listed by '" + a + " status' (default 20)\n\n" +
			"# Power on/off all or listed device(s)\n" + a + " on|off [<devices>]\n\n" +
			"# Show status of ClusterHAT/CTRL\n" + a + " status\n\n" +
			"# Get number of controllable Pi\n" + a + " maxpi\n\n" +
			"# Create/update symlinks for rpiboot [root]\nsudo " + a + " init\n\n" +
			"# Turn ALERT LED on/off for all or listed device(s)\n" + a + " alert on|off [<devices>]\n\n" +
			"# Enable LED (Power/pX/etc.)\n" + a + " led on\n\n" +
			"# Disable LED (Power/pX/etc.)\n" + a + " led off\n\n" +
			"# Turns on/off or resets the USB HUB\n" + a + " hub off|on|reset\n\n" +
			"## The following are only available on ClusterCTRL devices\n\n" +
			"# Set order on device <old> to <new>\n" + a + " setorder <old> <new>\n\n" +
			"# Get USB path to Px\n" + a + " getpath <device>\n\n" +
			"# Turns FAN on/off for CTRL with <order>\n" + a + " fan on|off <order>\n\n" +
			"# Enable/Disable ACT LED\n" + a + " act on|off\n\n" +
			"# Save current settings to EEPROM\n" + a + " save <order>\n\n" +
			"# Save current order to EEPROM\n" + a + " saveorder <order>\n\n" +
			"# Save current Power On State to EEPROM\n" + a + " savepos <order>\n\n" +
			"# Save factory default settings to EEPROM\n" + a + " savedefaults <order>\n\n"
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, "[control]\nsocket = %q\n", filepath.Join(t.TempDir(), "none.sock")), 0o644)
	bin := clusterctrlBinary(t)
	for _, args := range [][]string{{}, {"help"}, {"--help"}, {"-h"}, {"/?"}, {"help", "on"}} {
		if out, code := cc(t, cfg, args...); code != 0 || out != want(bin) {
			t.Errorf("clusterctrl %v: exit %d\n%s", args, code, out)
		}
	}
	// Found on PATH, it names itself by the path, as Python's argv[0].
	cmd := exec.Command(bin, "help")
	cmd.Args[0] = "clusterctrl"
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	if out, err := cmd.Output(); err != nil || string(out) != want(bin) {
		t.Errorf("clusterctrl help from PATH: %v\n%s", err, out)
	}
	// Without a daemon: one line, exit 1, for every command.
	for _, args := range [][]string{{"status"}, {"on", "p1"}, {"maxpi"}} {
		out, code := cc(t, cfg, args...)
		if code != 1 || out != "ERROR: the headnode daemon is not running; it drives the ClusterHAT/ClusterCTRL boards: start it with `sudo systemctl start headnode`\n" {
			t.Errorf("%v without a daemon: exit %d %q", args, code, out)
		}
	}
	// init waits for a daemon that is starting (at boot, beside the
	// official clusterctrl-init.service).
	tp := newTopo(t, true)
	dcfg := tp.config(t, "[power]\nprobe = \"none\"\n[hardware]\nbackend = \"sim\"\n")
	done := make(chan string)
	go func() {
		cmd := exec.Command(bin, "init")
		cmd.Env = append(os.Environ(), "HEADNODE_CONFIG="+dcfg)
		out, err := cmd.CombinedOutput()
		done <- fmt.Sprintf("%v %s", err, out)
	}()
	time.Sleep(500 * time.Millisecond)
	d := tp.startDaemon(t, dcfg)
	select {
	case got := <-done:
		if got != "<nil> " {
			t.Errorf("init while the daemon starts: %s", got)
		}
	case <-time.After(20 * time.Second):
		t.Error("init did not return after the daemon started")
	}
	d.stop(t)
}
