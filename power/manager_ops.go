package power

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/headnode/headnode/hw/detect"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/nodename"
)

// The operations beyond node power, and ALERT during bulk sequences. All
// run on the manager's goroutine.

// boardsOf returns the indexes of the boards that carry nodes ns, in
// numbering order.
func (m *Manager) boardsOf(ns []int) []int {
	var out []int
	for _, n := range ns {
		if i, _, ok := m.c.Locate(n); ok && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// holdAlerts lights ALERT on each board of ns whose ALERT is off, for the
// length of a bulk on or off, as the official tool does (it lights the
// ClusterHAT's and restores it after; it lights each ClusterCTRL's and
// switches it off after): the board shows that its nodes are being
// switched. A ClusterCTRL's ALERT cannot be read back; it is taken as off.
func (m *Manager) holdAlerts(ns []int) {
	for _, i := range m.boardsOf(ns) {
		br := &m.boards[i]
		if br.err != nil || br.alertHeld || (br.st.Alert != nil && *br.st.Alert) {
			continue
		}
		b := m.c.Boards()[i]
		if err := b.SetAlert(true); err != nil {
			if !errors.Is(err, board.ErrUnsupported) {
				m.o.Log.Warn("ALERT for the power sequence", "board", b.Info().Model, "err", err)
			}
			continue
		}
		br.alertHeld = true
		m.readBoard(i)
	}
}

// releaseAlerts switches off each held ALERT whose board has no node
// waiting for its power-on any more.
func (m *Manager) releaseAlerts() {
	for i := range m.boards {
		br := &m.boards[i]
		if !br.alertHeld || slices.ContainsFunc(m.queue, func(n int) bool { j, _, _ := m.c.Locate(n); return j == i }) {
			continue
		}
		br.alertHeld = false
		b := m.c.Boards()[i]
		if err := b.SetAlert(false); err != nil {
			m.o.Log.Warn("ALERT after the power sequence", "board", b.Info().Model, "err", err)
			m.boardError(i, err)
			continue
		}
		m.readBoard(i)
	}
}

// alert switches ALERT on every board, or, with nodes named, on their
// boards (the official tool's `alert on p5`). A request ends any hold.
func (m *Manager) alert(ns []int, on bool) ([]string, error) {
	what := "alert " + onOff(on)
	if len(ns) == 0 {
		for i := range m.boards {
			m.boards[i].alertHeld = false
		}
		return m.eachBoard(what, func(b board.Board) error { return b.SetAlert(on) })
	}
	var changes []string
	var errs []error
	for _, i := range m.boardsOf(ns) {
		m.boards[i].alertHeld = false
		b := m.c.Boards()[i]
		if err := b.SetAlert(on); err != nil {
			m.boardError(i, err)
			errs = append(errs, fmt.Errorf("%s: %w", b.Info().Model, err))
			continue
		}
		m.readBoard(i)
		changes = append(changes, fmt.Sprintf("%s: %s", b.Info().Model, what))
	}
	return changes, errors.Join(errs...)
}

// byOrder returns the ClusterCTRL board with order o (the first by bus
// when two share it).
func (m *Manager) byOrder(o int) (int, error) {
	var orders []string
	for i, b := range m.c.Boards() {
		if b.Info().Kind != "clusterctrl" {
			continue
		}
		if b.Info().Order == o {
			return i, nil
		}
		orders = append(orders, strconv.Itoa(b.Info().Order))
	}
	if len(orders) == 0 {
		return 0, inputErrorf("no ClusterCTRL board with order %d: there is no ClusterCTRL board", o)
	}
	return 0, inputErrorf("no ClusterCTRL board with order %d: the boards have %s", o, strings.Join(orders, ", "))
}

// controller returns the ClusterCTRL board with order o as a
// board.Controller, what being what it is asked for (for the message when
// it is not one).
func (m *Manager) controller(o int, what string) (int, board.Controller, error) {
	i, err := m.byOrder(o)
	if err != nil {
		return 0, nil, err
	}
	b := m.c.Boards()[i]
	ctl, ok := b.(board.Controller)
	if !ok {
		return 0, nil, inputErrorf("%s has no %s", b.Info().Model, what)
	}
	return i, ctl, nil
}

// target resolves a fan or act target: "" every board, else an order.
func (m *Manager) target(t string) ([]int, error) {
	if t == "" {
		out := make([]int, len(m.c.Boards()))
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	o, err := strconv.Atoi(t)
	if err != nil || o < 1 || o > 255 {
		return nil, inputErrorf("%q is not an order: use 1-255 (the order `headnode status` lists), or c for the head node's fan", t)
	}
	i, err := m.byOrder(o)
	return []int{i}, err
}

// onBoards does f on the boards is: a board that cannot is listed as such
// (and its refusal returned in unsupported), one that fails is marked
// failed.
func (m *Manager) onBoards(is []int, what string, f func(board.Board) error) (changes []string, unsupported []error, errs []error) {
	for _, i := range is {
		b := m.c.Boards()[i]
		err := f(b)
		switch {
		case errors.Is(err, board.ErrUnsupported):
			unsupported = append(unsupported, err)
			changes = append(changes, fmt.Sprintf("%s: %s not supported", b.Info().Model, what))
		case err != nil:
			m.boardError(i, err)
			errs = append(errs, fmt.Errorf("%s: %w", b.Info().Model, err))
		default:
			m.readBoard(i)
			changes = append(changes, fmt.Sprintf("%s: %s", b.Info().Model, what))
		}
	}
	return changes, unsupported, errs
}

// fan switches fans: the head node's (target "c" or ""), the boards' (""
// or an order).
func (m *Manager) fan(t string, on bool) ([]string, error) {
	what := "fan " + onOff(on)
	var changes []string
	var errs []error
	head := false
	if t == "" || t == "c" {
		if m.o.Fan != nil {
			head = true
			if err := m.o.Fan.Drive(on); err != nil {
				errs = append(errs, fmt.Errorf("the head node's fan (%s): %w", m.o.Fan.Name(), err))
			} else {
				changes = append(changes, fmt.Sprintf("head node (%s): %s", m.o.Fan.Name(), what))
			}
		} else if t == "c" {
			return nil, inputErrorf("the head node has no fan: set [power] fan_gpio to the BCM line that switches it")
		}
	}
	if t == "c" {
		return changes, errors.Join(errs...)
	}
	is, err := m.target(t)
	if err != nil {
		return nil, err
	}
	ch, unsupported, berrs := m.onBoards(is, what, func(b board.Board) error {
		if f, ok := b.(board.FanSwitch); ok {
			return f.SetFan(on)
		}
		return board.Unsupported("%s has no fan control", b.Info().Model)
	})
	if !head && len(unsupported) == len(is) {
		if len(unsupported) == 0 {
			return nil, inputErrorf("no fan to switch: no board has one, and [power] fan_gpio names none on the head node")
		}
		return nil, &InputError{Msg: unsupported[0].Error()}
	}
	return append(changes, ch...), errors.Join(append(errs, berrs...)...)
}

// act enables or disables the ClusterCTRL A+6's activity LED.
func (m *Manager) act(t string, on bool) ([]string, error) {
	is, err := m.target(t)
	if err != nil {
		return nil, err
	}
	ch, unsupported, errs := m.onBoards(is, "ACT LED "+onOff(on), func(b board.Board) error {
		if a, ok := b.(board.ACTSwitch); ok {
			return a.SetACT(on)
		}
		return board.Unsupported("%s has no ACT LED", b.Info().Model)
	})
	if len(unsupported) == len(is) {
		return nil, &InputError{Msg: unsupported[0].Error()}
	}
	return ch, errors.Join(errs...)
}

// usbboot drives the nodes' USBBOOT lines. Nodes of boards without them
// (a ClusterHAT) are passed over, as the official tool passes them.
func (m *Manager) usbboot(ns []int, on bool) ([]string, error) {
	if len(ns) == 0 {
		return nil, inputErrorf("usbboot needs the nodes to switch, e.g. p5")
	}
	var changes []string
	var errs []error
	did := 0
	for _, n := range ns {
		i, local, _ := m.c.Locate(n)
		b := m.c.Boards()[i]
		u, ok := b.(board.USBBootSwitch)
		if !ok {
			changes = append(changes, fmt.Sprintf("%s: no USBBOOT line (%s)", nodename.Name(n), b.Info().Model))
			continue
		}
		if err := u.SetUSBBoot(local, on); err != nil {
			if errors.Is(err, board.ErrUnsupported) {
				changes = append(changes, fmt.Sprintf("%s: no USBBOOT line (%s)", nodename.Name(n), b.Info().Model))
				continue
			}
			m.boardError(i, err)
			errs = append(errs, fmt.Errorf("%s: %w", nodename.Name(n), err))
			continue
		}
		did++
		m.readBoard(i)
		changes = append(changes, fmt.Sprintf("%s: usbboot %s", nodename.Name(n), onOff(on)))
	}
	if did == 0 && len(errs) == 0 {
		return nil, inputErrorf("no USBBOOT line to switch: %s", strings.Join(changes, "; "))
	}
	return changes, errors.Join(errs...)
}

// setOrder gives the ClusterCTRL with order old the order new (until its
// controller restarts, unless saved). The nodes are numbered again, as the
// official tool numbers them on its next run: requested states and queued
// power-ons follow their boards.
func (m *Manager) setOrder(old, new int) ([]string, error) {
	if new < 1 || new > 255 {
		return nil, inputErrorf("order %d is out of range; use 1-255", new)
	}
	i, ctl, err := m.controller(old, "order to set")
	if err != nil {
		return nil, err
	}
	b := m.c.Boards()[i]
	if err := ctl.SetOrder(new); err != nil {
		m.boardError(i, err)
		return nil, fmt.Errorf("%s: %w", b.Info().Model, err)
	}
	m.renumber()
	return []string{fmt.Sprintf("%s on I2C bus %d: order %d (was %d; not saved: `save %d order` keeps it)", b.Info().Model, b.Info().Bus, new, old, new)}, nil
}

// renumber numbers the nodes again after an order changed.
func (m *Manager) renumber() {
	old := m.c
	nc, moved := old.renumbered()
	at := func(n int) int {
		i, local, ok := old.Locate(n)
		if !ok {
			return n
		}
		return nc.First(moved[i]) + local - 1
	}
	boards := make([]boardRun, len(m.boards))
	for i, br := range m.boards {
		boards[moved[i]] = br
	}
	req := map[int]bool{}
	for n, on := range m.requested {
		req[at(n)] = on
	}
	for k, n := range m.queue {
		m.queue[k] = at(n)
	}
	m.c, m.boards, m.requested = nc, boards, req
	if err := m.saveRequested(); err != nil {
		m.o.Log.Error("saving requested power states", "err", err)
	}
}

// save writes settings to a ClusterCTRL's EEPROM.
func (m *Manager) save(order int, what board.Saving) ([]string, error) {
	i, ctl, err := m.controller(order, "EEPROM to save to")
	if err != nil {
		return nil, err
	}
	b := m.c.Boards()[i]
	if err := ctl.Save(what); err != nil {
		m.boardError(i, err)
		return nil, fmt.Errorf("%s: %w", b.Info().Model, err)
	}
	return []string{fmt.Sprintf("%s (order %d): saved %s", b.Info().Model, order, what)}, nil
}

// restart restarts a ClusterCTRL's controller: it applies its saved
// power-on state, which then becomes what is asked of its nodes.
func (m *Manager) restart(order int) ([]string, error) {
	i, ctl, err := m.controller(order, "controller to restart")
	if err != nil {
		return nil, err
	}
	b := m.c.Boards()[i]
	m.queue = slices.DeleteFunc(m.queue, func(n int) bool { j, _, _ := m.c.Locate(n); return j == i })
	if err := ctl.Restart(); err != nil {
		m.boardError(i, err)
		return nil, fmt.Errorf("%s: %w", b.Info().Model, err)
	}
	m.boards[i].restarted, m.boards[i].ready = true, false
	m.readBoard(i)
	return []string{fmt.Sprintf("%s (order %d): controller restarted", b.Info().Model, order)}, nil
}

// paths finds the USB path of each of ns (none: every node), as the
// official tool's getpath does: a ClusterHAT v1's is configured (its
// HATUSBPath), a v2/v3's is found (its hub), a ClusterCTRL's is its
// i2c-tiny-usb interface's path, less the controller's own ports on the
// board's hub (GETPATH 0), with the node's (GETPATH n) appended. A node
// whose path cannot be told is left out.
func (m *Manager) paths(ns []int) (Result, error) {
	if len(ns) == 0 {
		for n := 1; n <= m.c.Nodes(); n++ {
			ns = append(ns, n)
		}
	}
	out := map[int]string{}
	var errs []error
	hat := map[int]string{} // board -> the hub's path, "" unknown
	ctrl := map[int]string{}
	for _, n := range ns {
		i, local, _ := m.c.Locate(n)
		b := m.c.Boards()[i]
		info := b.Info()
		switch info.Kind {
		case "clusterhat":
			hub, ok := hat[i]
			if !ok {
				var err error
				if hub, err = m.hatHub(i); err != nil {
					errs = append(errs, err)
				}
				hat[i] = hub
			}
			if hub == "" {
				continue
			}
			port := 5 - local // P1 on hub port 4, ..., P4 on port 1
			if info.Major == 2 && info.Minor == 6 || info.Major == 3 && info.Minor == 1 {
				port = local // v2.6 and v3.1 wire Px to port x
			}
			out[n] = hub + "." + strconv.Itoa(port)
		case "clusterctrl":
			pr, ok := b.(board.PathReader)
			if !ok {
				continue
			}
			prefix, ok := ctrl[i]
			if !ok {
				usb, found := detect.I2CTinyUSBPath(m.o.SysRoot, info.Bus)
				if !found {
					errs = append(errs, fmt.Errorf("%s on I2C bus %d: not found in %s/sys/bus/usb/drivers/i2c-tiny-usb", info.Model, info.Bus, strings.TrimSuffix(m.o.SysRoot, "/")))
					ctrl[i] = "\x00"
					continue
				}
				own, err := pr.Path(0)
				if err != nil && !errors.Is(err, board.ErrUnsupported) {
					m.boardError(i, err)
					errs = append(errs, err)
					ctrl[i] = "\x00"
					continue
				}
				prefix = stripPath(usb, own)
				ctrl[i] = prefix
			}
			if prefix == "\x00" {
				continue
			}
			p, err := pr.Path(local)
			if err != nil && !errors.Is(err, board.ErrUnsupported) {
				m.boardError(i, err)
				errs = append(errs, err)
				continue
			}
			out[n] = prefix + joinPath(p)
		}
	}
	return Result{Paths: out}, errors.Join(errs...)
}

func joinPath(p []byte) string {
	s := make([]string, len(p))
	for i, b := range p {
		s[i] = strconv.Itoa(int(b))
	}
	return strings.Join(s, ".")
}

// stripPath is the official tool's usbpathname[:-len(pathdata)]: the
// interface's path less as many characters as the controller's own ports
// take when written out. Python's s[:-0] is "", so a board that has no
// ports of its own (the Stack, whose GETPATH fails) gives "" too; its
// nodes then get empty paths, as the official tool prints them.
func stripPath(usb string, own []byte) string {
	p := joinPath(own)
	if p == "" || len(p) > len(usb) {
		return ""
	}
	return usb[:len(usb)-len(p)]
}

// hatHub finds a ClusterHAT's hub on USB. A v1's cannot be switched and
// is configured. A v2/v3's is the one hub with the ClusterHAT's IDs; when
// there are several, the official tool's way tells which: with the hub on,
// list them; switch it off; list again; the one that vanished is it; then
// on again. That cuts the nodes' USB for PathSettle (about a second),
// which is why it is done only when needed.
func (m *Manager) hatHub(i int) (string, error) {
	b := m.c.Boards()[i]
	if b.Info().Major == 1 {
		return m.o.HATUSBPath, nil
	}
	if st := m.boards[i].st; st.Hub != nil && *st.Hub {
		if hubs := detect.USBDevicesOf(m.o.SysRoot, detect.ClusterHATHubs); len(hubs) == 1 {
			return hubs[0], nil
		}
	}
	settle := m.o.PathSettle
	if settle == 0 {
		settle = time.Second
	}
	if err := b.SetHub(true); err != nil {
		m.boardError(i, err)
		return "", err
	}
	time.Sleep(settle)
	before := detect.USBDevicesOf(m.o.SysRoot, detect.ClusterHATHubs)
	if err := b.SetHub(false); err != nil {
		m.boardError(i, err)
		return "", err
	}
	time.Sleep(settle)
	after := detect.USBDevicesOf(m.o.SysRoot, detect.ClusterHATHubs)
	if err := b.SetHub(true); err != nil {
		m.boardError(i, err)
		return "", err
	}
	m.readBoard(i)
	var gone []string
	for _, h := range before {
		if !slices.Contains(after, h) {
			gone = append(gone, h)
		}
	}
	for _, h := range after {
		if !slices.Contains(before, h) {
			return "", nil // another hub came meanwhile: cannot tell
		}
	}
	if len(gone) != 1 {
		return "", nil
	}
	return gone[0], nil
}
