package main

// The official tool's capabilities in headnode's own commands, end to end
// on an emulated ClusterHAT v2.5 with a Triple (order 20) and an A+6
// (order 21) and a fan on GPIO18: what each prints, its exit code, and
// what the chips then hold.

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func TestE2EPowerHeadnodeVocabulary(t *testing.T) {
	tp := newTopo(t, true)
	cfg := tp.config(t, `
[power]
stagger = "50ms"
probe = "none"
fan_gpio = 18

[hardware]
backend = "sim"

[hardware.sim]
board = "clusterhat+clusterctrl"
revision = "2.5"
ctrl = ["triple", "a+6"]
`)
	d := tp.startDaemon(t, cfg)
	d.waitFor(t, "three boards with their readings", func(s *api.Status) bool {
		return len(s.Power.Boards) == 3 && len(s.Power.Boards[1].Voltages) == 1 && len(s.Power.Boards[2].Voltages) == 2 && s.Power.Head.Fan != nil
	})
	hn := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, nil, append(args, "--config", cfg)...)
	}
	ok := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := hn(args...)
		if code != 0 || out != want {
			t.Errorf("headnode %s: exit %d, stdout %q, stderr %q; want %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}

	out, _, _ := hn("status")
	for _, re := range []string{
		`head\s+Raspberry Pi \(revision 0x00c03114\), power and temperature fine \(throttled=0x0\), fan off \(GPIO18\)`,
		`board\s+ClusterHAT v2.5 \(I2C bus 1 0x20, XRA1200P\): p1-p4, hub on, alert off, leds on\n\s+uuid 622aef87-17d6-4022-a370-781e1c3fe2b9, vendor 8086 Consultancy, product id 0x0004, EEPROM write-protected \(WP link open\)`,
		`board\s+ClusterCTRL Triple \(I2C bus 11 0x20, 1.8, order 20\): p5-p7\n\s+fan off, ADC1 5 V rail 5.10 V, 24.6 °C`,
		`board\s+ClusterCTRL A\+6 \(I2C bus 12 0x20, 1.8, order 21\): p8-p12\n\s+fan off, ADC1 5 V rail 5.10 V, ADC2 5 V rail 5.10 V, 24.6 °C`,
		`NODE\s+STATE\s+POWER\s+ADDRESS\s+SINCE\s+USBBOOT\n`,
		`p1\s+off\s+off\s+192.168.50.11\s+\S+\s+-\n`,
		`p5\s+off\s+off\s+192.168.50.15\s+\S+\s+on\n`,
		`p8\s+off\s+off\s+192.168.50.18\s+\S+\s+-\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %s:\n%s", re, out)
		}
	}

	ok("ClusterHAT v2.5: write protection off\nClusterCTRL Triple: write protection off not supported\nClusterCTRL A+6: write protection off not supported\n", "wp", "off")
	ok("head node (GPIO18): fan on\n", "fan", "on", "c")
	ok("ClusterCTRL Triple: fan on\n", "fan", "on", "20")
	ok("ClusterCTRL A+6: ACT LED off\n", "act", "off", "21")
	ok("p1: no USBBOOT line (ClusterHAT v2.5)\np5: usbboot off\n", "usbboot", "off", "p1", "p5")
	ok("ClusterCTRL A+6: alert on\n", "alert", "on", "p9")
	ok("ClusterHAT v2.5: leds off\nClusterCTRL Triple: leds off\nClusterCTRL A+6: leds off\n", "led", "off")
	ok("p1: 1-1.3.4\np2: 1-1.3.3\np3: 1-1.3.2\np4: 1-1.3.1\np5: 1-1.4.4\np6: 1-1.4.3\np7: 1-1.4.2\np8: 1-1.5.1\np9: 1-1.5.2\np10: 1-1.5.3\np11: 1-1.5.4.2\np12: 1-1.5.4.4\n", "getpath")
	ok("p11: 1-1.5.4.2\n", "getpath", "p11")
	c := readChips(t, tp)
	if c.ocr()&0x90 != 0x00 || !c.Pins[18][1] || !c.CTRL[11].Fan || c.CTRL[12].ACTLED || c.CTRL[11].USBBootPins != 0b110 || !c.CTRL[12].Alert || c.CTRL[11].Alert {
		t.Errorf("chips after wp off, fan on, act off, usbboot off p5, alert on p9, led off: HAT %#02x, fan line %v, Triple fan %v usbboot %03b alert %v, A+6 ACT %v alert %v",
			c.ocr(), c.Pins[18], c.CTRL[11].Fan, c.CTRL[11].USBBootPins, c.CTRL[11].Alert, c.CTRL[12].ACTLED, c.CTRL[12].Alert)
	}

	// The Triple becomes order 25: the A+6's nodes are now p5-p9.
	ok("ClusterCTRL Triple on I2C bus 11: order 25 (was 20; not saved: `save 25 order` keeps it)\n", "setorder", "20", "25")
	ok("ClusterCTRL Triple (order 25): saved order\n", "save", "25", "order")
	ok("p5: on\n", "on", "p5")
	c = readChips(t, tp)
	if c.CTRL[11].EEPROM.Order != 25 || c.ctrlPower(12, 5) != "10000" || c.ctrlPower(11, 3) != "000" {
		t.Errorf("after setorder 20 25, save 25 order, on p5: Triple EEPROM order %d, A+6 %s, Triple %s", c.CTRL[11].EEPROM.Order, c.ctrlPower(12, 5), c.ctrlPower(11, 3))
	}
	ok("ClusterCTRL A+6 (order 21): saved pos\n", "save", "21", "pos")
	ok("ClusterCTRL A+6 (order 21): controller restarted\n", "reset", "21")
	out, _, _ = hn("status", "--json")
	var s api.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	b := s.Power.Boards
	if len(b) != 3 || b[0].UUID == "" || b[0].WP == nil || *b[0].WP || b[0].WPLink == nil || *b[0].WPLink != 0 ||
		b[1].Model != "ClusterCTRL A+6" || b[1].Order != 21 || b[1].First != 5 || b[2].Order != 25 || b[2].Temperature == nil ||
		s.Power.Head.Revision != "0x00c03114" || s.Power.Head.Fan == nil || !*s.Power.Head.Fan || s.Power.Nodes[4].Powered == nil || !*s.Power.Nodes[4].Powered {
		t.Errorf("status --json: %+v", s.Power)
	}

	// Bad input: one line, exit 2, nothing changed.
	before := readChips(t, tp)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fan", "on", "99"}, "headnode: no ClusterCTRL board with order 99: the boards have 21, 25\n"},
		{[]string{"fan", "spin"}, "headnode: fan needs on|off and optionally c|ORDER, e.g. `headnode fan on 20`\n"},
		{[]string{"act", "on", "c"}, "headnode: \"c\" is not an order: use 1-255, as `headnode status` lists them\n"},
		{[]string{"usbboot", "on", "p1"}, "headnode: no USBBOOT line to switch: p1: no USBBOOT line (ClusterHAT v2.5)\n"},
		{[]string{"usbboot", "on"}, "headnode: usbboot needs on|off and the nodes, e.g. `headnode usbboot on p5`\n"},
		{[]string{"setorder", "21"}, "headnode: setorder needs the board's order and its new one, e.g. `headnode setorder 20 21`\n"},
		{[]string{"save", "21", "everything"}, "headnode: nothing called \"everything\" to save: use all, order, usbboot, pos, leds or defaults\n"},
		{[]string{"reset", "300"}, "headnode: \"300\" is not an order: use 1-255, as `headnode status` lists them\n"},
		{[]string{"getpath", "p13"}, "headnode: unknown node \"p13\": this board has p1-p12\n"},
		{[]string{"alert", "on", "p13"}, "headnode: unknown node \"p13\": this board has p1-p12\n"},
		{[]string{"led", "dim"}, "headnode: unknown LED mode \"dim\": use identify, stopped or auto (or on, off for the boards' node LEDs)\n"},
	} {
		out, errOut, code := hn(tc.args...)
		if code != 2 || out != "" || errOut != tc.want {
			t.Errorf("headnode %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	b1, _ := json.Marshal(before)
	if b2, _ := json.Marshal(readChips(t, tp)); string(b1) != string(b2) {
		t.Errorf("refused requests changed the chips:\n%s\n%s", b1, b2)
	}
}
