package sim

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/hw/emu/gadget"
	"github.com/headnode/headnode/hw/tty"
)

// Each emulated node has a serial console, as a Pi Zero on a ClusterHAT
// does through its USB gadget: from power-on it prints a short boot log,
// then a shell runs on it inside the node's namespace. It is plugged into
// the emulated machine's USB tree (package gadget) the way the vendor's
// node images present it (vendor 0x3171, the node's number as serial,
// the console on interface 2), so the daemon finds and opens it with the
// code it uses on a real head node.
//
// Two pseudo-terminals and a relay stand for the USB cable: the head's
// end is a raw pty whose slave the USB tree links as ttyACMn; the node's
// end is the pty the shell has as its controlling terminal, with the
// line discipline a node's getty would have. Power off closes both: the
// daemon's read ends as it does when a gadget vanishes, and the shell
// gets its hangup.

// nodeConsoles are the consoles of a sandbox's nodes.
type nodeConsoles struct {
	tree *gadget.Tree
	mu   sync.Mutex
	on   map[string]*nodeConsole
}

// nodeConsole is one powered node's console.
type nodeConsole struct {
	name      string
	tty       string // its name in the USB tree, once plugged
	head      *os.File
	headSlave *os.File
	stop      chan struct{}
	done      sync.WaitGroup
}

func newNodeConsoles(stateDir string) (*nodeConsoles, error) {
	t, err := gadget.New(gadget.Dir(stateDir))
	if err != nil {
		return nil, fmt.Errorf("emulated USB tree for the node consoles: %w", err)
	}
	return &nodeConsoles{tree: t, on: map[string]*nodeConsole{}}, nil
}

// usbPort places node n on an emulated hub, four nodes to a hub as on a
// ClusterHAT (whose hub port 1 is P4).
func usbPort(n int) string {
	return fmt.Sprintf("1-1.%d.%d", 2+(n-1)/4, 4-(n-1)%4)
}

// powerOn plugs node's console in and boots it: boot lines over boot,
// then a shell in ns.
func (nc *nodeConsoles) powerOn(name string, n int, ns string, boot time.Duration) error {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.on[name] != nil {
		return nil
	}
	head, headSlave, err := pty.Open()
	if err != nil {
		return err
	}
	// Raw before anything is written, or the boot log would be echoed
	// back into the node as input.
	t, err := unix.IoctlGetTermios(int(headSlave.Fd()), unix.TCGETS)
	if err == nil {
		tty.Raw(t)
		err = unix.IoctlSetTermios(int(headSlave.Fd()), unix.TCSETS, t)
	}
	if err != nil {
		head.Close()
		headSlave.Close()
		return err
	}
	c := &nodeConsole{name: name, head: head, headSlave: headSlave, stop: make(chan struct{})}
	c.tty, err = nc.tree.Plug(gadget.USB{
		Port: usbPort(n), Vendor: 0x3171, Product: 0x0021, Serial: strconv.Itoa(n), Name: "ClusterCTRL",
		Interface: 2, Target: headSlave.Name(),
	})
	if err != nil {
		head.Close()
		headSlave.Close()
		return err
	}
	nc.on[name] = c
	c.done.Go(func() { c.boot(n, ns, boot) })
	return nil
}

// powerOff takes node's console away, ending its shell.
func (nc *nodeConsoles) powerOff(name string) {
	nc.mu.Lock()
	c := nc.on[name]
	delete(nc.on, name)
	nc.mu.Unlock()
	if c == nil {
		return
	}
	nc.tree.Unplug(c.tty)
	close(c.stop)
	c.head.Close()
	c.headSlave.Close()
	c.done.Wait()
}

// close powers every console off.
func (nc *nodeConsoles) close() {
	nc.mu.Lock()
	var names []string
	for name := range nc.on {
		names = append(names, name)
	}
	nc.mu.Unlock()
	for _, name := range names {
		nc.powerOff(name)
	}
}

// bootLines is what an emulated node prints while it boots.
func bootLines(name string, n int) []string {
	return []string{
		"[    0.000000] Booting Linux on physical CPU 0x0",
		"[    0.000000] Linux version 6.12.34+rpt-rpi-v6 (headnode sim) #1 Raspbian",
		"[    0.000000] Machine model: Raspberry Pi Zero W Rev 1.1 (emulated)",
		fmt.Sprintf("[    1.204331] dwc2 20980000.usb: bound driver configfs-gadget.ClusterCTRL (node %d)", n),
		"[    2.913554] EXT4-fs (mmcblk0p2): mounted filesystem with ordered data mode",
		"[  OK  ] Reached target multi-user.target - Multi-User System.",
		"",
		fmt.Sprintf("Raspbian GNU/Linux 12 %s ttyGS0", name),
		"",
	}
}

func (c *nodeConsole) boot(n int, ns string, boot time.Duration) {
	lines := bootLines(c.name, n)
	step := boot / time.Duration(len(lines))
	for _, l := range lines {
		if _, err := io.WriteString(c.head, l+"\r\n"); err != nil {
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(step):
		}
	}
	// Input from the head goes to whichever shell runs.
	var mu sync.Mutex
	var cur *os.File
	var relay sync.WaitGroup
	relay.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.head.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			if cur != nil {
				cur.Write(buf[:n])
			}
			mu.Unlock()
		}
	})
	defer relay.Wait()
	defer c.head.Close()
	for {
		node, cmd, err := startShell(c.name, ns)
		if err != nil {
			fmt.Fprintf(c.head, "headnode sim: the node's shell did not start: %v\r\n", err)
			return
		}
		mu.Lock()
		cur = node
		mu.Unlock()
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		var out sync.WaitGroup
		out.Go(func() { io.Copy(c.head, node) })
		stopped := false
		select {
		case <-c.stop:
			stopped = true
		case <-exited:
		}
		// The terminal hangs up on the shell, and anything it started
		// in its session goes with it.
		mu.Lock()
		cur = nil
		mu.Unlock()
		node.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
		select {
		case <-exited:
		case <-time.After(2 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		out.Wait()
		if stopped {
			return
		}
		// The user typed exit: like getty, a new shell.
		select {
		case <-c.stop:
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// startShell runs a shell in namespace ns on a new pty, as its session's
// controlling terminal.
func startShell(name, ns string) (*os.File, *exec.Cmd, error) {
	cmd := exec.Command("ip", "netns", "exec", ns, "/bin/sh", "-i")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=vt100", "PS1=root@" + name + ":~# "}
	f, err := pty.StartWithAttrs(cmd, nil, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	return f, cmd, err
}

// startConsoles gives the sandbox's nodes consoles, in the USB tree of
// the emulated machine the daemon's configuration (at cfgPath) describes.
func (sb *sandboxNet) startConsoles(cfgPath string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	nc, err := newNodeConsoles(cfg.SimSpec().Dir)
	if err != nil {
		return err
	}
	sb.consoles = nc
	return nil
}

// consoleOn powers node's console on (sb.mu held): it boots in the time
// the node's network takes to appear.
func (sb *sandboxNet) consoleOn(node *simNode, boot time.Duration) {
	if sb.consoles == nil {
		return
	}
	if err := sb.consoles.powerOn(node.name, node.n, node.ns.Name, boot); err != nil {
		node.out = "console: " + err.Error()
	}
}

// consoleOff powers node's console off (sb.mu held).
func (sb *sandboxNet) consoleOff(node *simNode) {
	if sb.consoles != nil {
		sb.consoles.powerOff(node.name)
	}
}
