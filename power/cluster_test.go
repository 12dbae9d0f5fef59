package power

import (
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/hw/emu"
	emuctrl "github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/hw/emu/expander"
	"github.com/headnode/headnode/hw/emu/gpiopin"
	"github.com/headnode/headnode/hw/emu/hateeprom"
	"github.com/headnode/headnode/power/clusterctrl"
	"github.com/headnode/headnode/power/clusterhat"
)

// machine is emulated hardware as detection sees it.
type machine struct {
	hatDir, devDir string
	buses          map[int]*emu.Bus
	pins           map[int]*gpiopin.Pin
	ctrls          map[int]*emuctrl.Dev
}

func newMachine(t *testing.T) *machine {
	d := t.TempDir()
	return &machine{hatDir: filepath.Join(d, "hat"), devDir: filepath.Join(d, "dev"), buses: map[int]*emu.Bus{}, pins: map[int]*gpiopin.Pin{}, ctrls: map[int]*emuctrl.Dev{}}
}

func (m *machine) bus(n int) *emu.Bus {
	if m.buses[n] == nil {
		m.buses[n] = emu.NewBus("emu")
	}
	return m.buses[n]
}

func (m *machine) hat(t *testing.T, major, minor int) {
	if err := hateeprom.WriteTree(m.hatDir, hateeprom.ClusterHAT(major, minor)); err != nil {
		t.Fatal(err)
	}
	if major > 1 {
		m.bus(1).Attach(0x20, expander.New(expander.XRA1200P))
	}
}

func (m *machine) ctrl(t *testing.T, bus int, v emuctrl.Variant, order byte) {
	if err := hateeprom.LinkClusterCTRL(m.devDir, bus); err != nil {
		t.Fatal(err)
	}
	m.ctrls[bus] = emuctrl.New(emuctrl.Opts{Variant: v, Order: order})
	m.bus(bus).Attach(emuctrl.Address, m.ctrls[bus])
}

func (m *machine) hardware() Hardware {
	return Hardware{
		HATDir: m.hatDir, DevDir: m.devDir,
		I2C: func(n int) (i2c.Bus, error) { return m.bus(n), nil },
		GPIO: func(n int) (clusterhat.Line, error) {
			if m.pins[n] == nil {
				m.pins[n] = gpiopin.New("GPIO", false)
			}
			return m.pins[n], nil
		},
	}
}

func detectOpts(board string) DetectOptions {
	return DetectOptions{Board: board, HATBus: 1, HATAddress: 0x20, HAT: clusterhat.DefaultOpts, CTRL: clusterctrl.DefaultOpts}
}

// FAQ 107: a HAT plus two Triples is p1-p10; order 20 on bus 4 comes
// before order 21 on bus 3.
func TestNumberingAcrossBoardsAsTheOfficialTool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t)
		m.hat(t, 2, 5)
		m.ctrl(t, 4, emuctrl.Triple, 20)
		m.ctrl(t, 3, emuctrl.Triple, 21)
		c, problems := Detect(m.hardware(), detectOpts("auto"))
		if len(problems) > 0 || c.Nodes() != 10 || c.Range() != "p1-p10" {
			t.Fatalf("%d nodes, %v", c.Nodes(), problems)
		}
		for n, want := range map[int][2]int{1: {-1, 1}, 4: {-1, 4}, 5: {4, 1}, 7: {4, 3}, 8: {3, 1}, 10: {3, 3}} {
			i, local, ok := c.Locate(n)
			if bus := c.Boards()[i].Info().Bus; !ok || local != want[1] || (want[0] > 0 && bus != want[0]) {
				t.Errorf("p%d: board bus %d local %d, want bus %d local %d", n, bus, local, want[0], want[1])
			}
		}
	})
}

// The official tool refuses every command when two boards share an order
// value; here both keep working, ordered by bus, with a warning naming
// both buses.
func TestDuplicateOrdersWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t)
		m.ctrl(t, 5, emuctrl.Triple, 20)
		m.ctrl(t, 3, emuctrl.PHAT, 20)
		c, problems := Detect(m.hardware(), detectOpts("auto"))
		if len(problems) > 0 || c.Nodes() != 5 {
			t.Fatalf("%d nodes, %v", c.Nodes(), problems)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "buses 3 and 5 have the same order 20") {
			t.Errorf("warnings %q", c.Warnings)
		}
		if c.Boards()[0].Info().Bus != 3 {
			t.Error("not ordered by bus")
		}
		r := newMachineRig(t, c)
		r.do(Request{Op: "on", Nodes: []int{2}})
		r.advance(time.Second) // the stagger
		r.do(Request{Op: "on", Nodes: []int{5}})
		if !m.ctrls[3].Powered(2) || !m.ctrls[5].Powered(3) || m.ctrls[5].Powered(1) {
			t.Error("p2 / p5 did not reach pHAT p2 / Triple p3")
		}
	})
}

func TestDetectWhatIsThere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t)
		if c, p := Detect(m.hardware(), detectOpts("auto")); c.Nodes() != 0 || len(p) != 0 {
			t.Errorf("nothing there, auto: %d nodes, %v", c.Nodes(), p)
		}
		for _, b := range []string{"clusterhat", "clusterctrl"} {
			if _, p := Detect(m.hardware(), detectOpts(b)); len(p) != 1 || !p[0].Missing {
				t.Errorf("%s expected, nothing there: %v", b, p)
			}
		}
		m.hat(t, 1, 3)
		c, p := Detect(m.hardware(), detectOpts("auto"))
		if len(p) != 0 || c.Nodes() != 4 || c.Boards()[0].Info().Model != "ClusterHAT v1.3" {
			t.Errorf("v1.3: %v %v", c.Boards(), p)
		}
		if len(m.pins) != 5 {
			t.Errorf("v1 opened %d GPIO lines", len(m.pins))
		}
		// An EEPROM that says v2.5 with no expander answering: missing.
		m.hat(t, 2, 5)
		m.bus(1).Detach(0x20)
		if _, p := Detect(m.hardware(), detectOpts("auto")); len(p) != 1 || !p[0].Missing || !strings.Contains(p[0].Error(), "bus 1") {
			t.Errorf("v2.5 without expander: %v", p)
		}
		o := detectOpts("clusterhat")
		o.HATVersion = "2.0"
		m.bus(1).Attach(0x20, expander.New(expander.PCA9554))
		if c, p := Detect(m.hardware(), o); len(p) != 0 || c.Boards()[0].Info().Model != "ClusterHAT v2.0" || c.Boards()[0].Info().Chip != "PCA9554" {
			t.Errorf("forced 2.0: %v", p)
		}
		if c, _ := Detect(m.hardware(), detectOpts("none")); c.Nodes() != 0 {
			t.Error("board none has nodes")
		}
	})
}

func TestParseNodes(t *testing.T) {
	c := NewCluster(nil, nil)
	if _, err := c.ParseNodes([]string{"p1"}); err == nil || err.Error() != `unknown node "p1": no board with node power control was found` {
		t.Errorf("no board: %v", err)
	}
	m := newMachine(t)
	m.hat(t, 2, 5)
	c, _ = Detect(m.hardware(), detectOpts("auto"))
	for in, want := range map[string]string{
		"p7":  `unknown node "p7": this board has p1-p4`,
		"p0":  `"p0" is not a node name: nodes are named p1, p2, ...; this board has p1-p4`,
		"px":  `"px" is not a node name: nodes are named p1, p2, ...; this board has p1-p4`,
		"P1":  `"P1" is not a node name: nodes are named p1, p2, ...; this board has p1-p4`,
		"p01": `"p01" is not a node name: nodes are named p1, p2, ...; this board has p1-p4`,
	} {
		if _, err := c.ParseNodes([]string{"p1", in}); err == nil || err.Error() != want {
			t.Errorf("%s: %v", in, err)
		}
	}
	if ns, err := c.ParseNodes(nil); err != nil || len(ns) != 4 {
		t.Errorf("all: %v %v", ns, err)
	}
	if ns, _ := c.ParseNodes([]string{"p3", "p1", "p3"}); len(ns) != 2 || ns[0] != 3 {
		t.Errorf("order and duplicates: %v", ns)
	}
}
