package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/hw/tty"
	"github.com/headnode/headnode/power/nodename"
)

// detachKey ends an attached session: Ctrl-], as in telnet and virsh.
// ssh's "~." would be taken by the ssh session most users reach the head
// node through.
const detachKey = 0x1d

func runConsole(ctx context.Context, env *Env) error {
	set, pos, err := flags(env.Args, "log", "follow", "read-only", "take")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("console needs one node, e.g. `headnode console p1`")
	}
	node := pos[0]
	if _, err := nodename.Parse(node); err != nil {
		return usagef("%v", err)
	}
	if set["read-only"] && set["take"] {
		return usagef("--read-only and --take contradict each other: choose one")
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	switch {
	case set["follow"]:
		return c.ConsoleFollow(ctx, node, func(l api.ConsoleLine) bool {
			printConsoleLine(env.Stdout, l)
			return true
		})
	case set["log"]:
		lg, err := c.ConsoleLog(ctx, node, 0)
		if err != nil {
			return err
		}
		for _, l := range lg.Lines {
			printConsoleLine(env.Stdout, l)
		}
		return nil
	}
	mode := api.AttachWrite
	if set["read-only"] {
		mode = api.AttachRead
	} else if set["take"] {
		mode = api.AttachTake
	}
	return attach(ctx, env, c, node, mode, os.Stdin)
}

// printConsoleLine prints one line of a log with its time.
func printConsoleLine(w io.Writer, l api.ConsoleLine) {
	ts := l.Time.Local().Format("2006-01-02 15:04:05.000")
	switch {
	case l.Missed > 0:
		fmt.Fprintf(w, "%s  -- %d bytes of output were pushed out of the buffer before they could be shown --\n", ts, l.Missed)
	case l.Event:
		fmt.Fprintf(w, "%s  -- %s --\n", ts, l.Text)
	default:
		fmt.Fprintf(w, "%s  %s\n", ts, l.Text)
	}
}

// attach runs an interactive session: the terminal in raw mode, what is
// typed to the node and what it prints to the terminal, until Ctrl-], the
// daemon ends the session (the node was powered off, another session took
// over, the daemon stopped), the connection is lost or a signal comes.
// The terminal's settings are put back on every one of those ways out.
func attach(ctx context.Context, env *Env, c *api.Client, node, mode string, in *os.File) error {
	conn, err := c.ConsoleAttach(ctx, node, mode)
	var re *api.RequestError
	if errors.As(err, &re) && re.Status == http.StatusConflict {
		return errors.New(re.Msg) // busy: nothing wrong with the command
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	ro := ""
	if conn.Hello.Mode == api.AttachRead {
		ro = ", read-only"
	}
	dev := conn.Hello.Device
	if dev == "" {
		dev = "no device yet"
	}

	fd := int(in.Fd())
	if tty.IsTerminal(fd) {
		restore, err := tty.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("cannot put the terminal into raw mode: %v", err)
		}
		defer restore()
	}
	// In raw mode the terminal sends no signals for keys, but a closed
	// terminal (SIGHUP), kill (SIGTERM) and the rest still come.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	// Said once the terminal is raw and signals are caught: from here on
	// every way out restores it.
	fmt.Fprintf(env.Stderr, "Connected to %s's console (%s%s). Ctrl-] detaches.\r\n", node, dev, ro)

	ended := make(chan error, 2)
	go func() { ended <- typeInto(conn, in) }()
	go func() { ended <- showFrom(conn, env.Stdout, env.Stderr) }()
	select {
	case err = <-ended:
	case sig := <-sigs:
		err = fmt.Errorf("detached from %s's console on %v", node, sig)
	case <-ctx.Done():
		// The command line's own signal handling saw the signal too.
		select {
		case sig := <-sigs:
			err = fmt.Errorf("detached from %s's console on %v", node, sig)
		case <-time.After(100 * time.Millisecond):
			err = fmt.Errorf("detached from %s's console: %w", node, ctx.Err())
		}
	}
	conn.Close()
	if errors.Is(err, errDetached) {
		fmt.Fprintf(env.Stderr, "\r\nDetached from %s's console.\r\n", node)
		return nil
	}
	fmt.Fprintf(env.Stderr, "\r\n")
	return err
}

var errDetached = errors.New("detached")

// typeInto sends what is typed until the detach key. Input that is not a
// terminal and ends leaves the session to the output side.
func typeInto(conn *api.ConsoleConn, in io.Reader) error {
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		p := buf[:n]
		i := bytes.IndexByte(p, detachKey)
		if i >= 0 {
			p = p[:i]
		}
		if len(p) > 0 {
			if serr := conn.Send(p); serr != nil {
				return nil // the output side says why
			}
		}
		if i >= 0 {
			return errDetached
		}
		if err != nil {
			select {} // no more input; output goes on until the session ends
		}
	}
}

// showFrom writes the node's output and the daemon's notices until the
// session ends, and returns why it did.
func showFrom(conn *api.ConsoleConn, out, errOut io.Writer) error {
	for {
		kind, p, err := conn.Read()
		if err != nil {
			return errors.New("the connection to the headnode daemon was lost")
		}
		switch kind {
		case api.FrameData:
			out.Write(p)
		case api.FrameNotice:
			fmt.Fprintf(errOut, "\r\n[headnode: %s]\r\n", p)
		case api.FrameEnd:
			return errors.New(string(p))
		}
	}
}

// printNodeStatus is `headnode status pN`: the node's line of the status,
// its console and the console's last lines.
func printNodeStatus(ctx context.Context, out io.Writer, c *api.Client, s *api.Status, node string) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	found := false
	for _, n := range s.Power.Nodes {
		if n.Name != node {
			continue
		}
		found = true
		pw := "unknown"
		if n.Powered != nil {
			pw = onOff(*n.Powered)
		}
		fmt.Fprintf(w, "node\t%s\n", n.Name)
		state := n.State
		if !n.Since.IsZero() {
			state += fmt.Sprintf(" for %s", time.Since(n.Since).Round(time.Second))
		}
		fmt.Fprintf(w, "state\t%s\n", state)
		fmt.Fprintf(w, "power\t%s\n", pw)
		if n.Address != "" {
			fmt.Fprintf(w, "address\t%s\n", n.Address)
		}
		if n.Gadget != "" {
			fmt.Fprintf(w, "gadget\t%s\n", n.Gadget)
		}
	}
	var nc *api.NodeConsole
	for i := range s.Consoles.Nodes {
		if s.Consoles.Nodes[i].Name == node {
			nc = &s.Consoles.Nodes[i]
		}
	}
	if !found && nc == nil {
		w.Flush()
		return usagef("the daemon knows no node %s", node)
	}
	if !found {
		fmt.Fprintf(w, "node\t%s (no power control)\n", node)
	}
	switch {
	case s.Consoles.State == api.ConsolesOff:
		fmt.Fprintf(w, "console\toff ([console] enabled = false)\n")
	case nc == nil:
		fmt.Fprintf(w, "console\tnone found\n")
	default:
		fmt.Fprintf(w, "console\t%s\n", consoleLine(*nc))
	}
	w.Flush()
	if nc == nil {
		return nil
	}
	lg, err := c.ConsoleLog(ctx, node, 20)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nlast console lines (all of them: headnode console %s --log):\n", node)
	for _, l := range lg.Lines {
		printConsoleLine(out, l)
	}
	return nil
}

func consoleLine(nc api.NodeConsole) string {
	s := nc.State
	if nc.Device != "" {
		s = nc.Device + ", " + s
	}
	if nc.Source != "" {
		s += " (" + nc.Source + ")"
	}
	if nc.Error != "" {
		s += ": " + nc.Error
	}
	s += fmt.Sprintf(", %d bytes captured", nc.Bytes)
	if nc.Writer {
		s += ", a writer attached"
	}
	if nc.Viewers > 0 {
		s += fmt.Sprintf(", %d watching", nc.Viewers)
	}
	return s
}
