package cli

import (
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/snmp"
)

// Each command's help: `headnode CMD --help` (or -h, or `headnode help
// CMD`) prints it on stdout and exits 0. The first line is the command's
// line of the general usage.

const globalFlagsUsage = `
Global flags (before or after the command):
  --config FILE    configuration file (default ` + config.DefaultPath + `)
  --socket PATH    control socket (default: [control] socket from the config)
`

const daemonUsage = `usage: headnode daemon [--config FILE]

Runs the daemon: NAT between the cluster and the uplink, node power, DHCP
for the nodes, the LCD and the status LED, the status page and the control
socket. systemd starts it (ExecStart). SIGHUP reloads the configuration,
SIGTERM stops it.
` + globalFlagsUsage

const statusUsage = `usage: headnode status [pN] [--json]

Prints the daemon's view of the cluster: nodes, uplink, NAT, LCD, LED and
the power board. With a node, that node: its state, its console and the
console's last lines. --json prints the whole status as JSON.
` + globalFlagsUsage

const onUsage = `usage: headnode on [pN ...]

Powers the named nodes on (all of them when none is named), one after the
other with the configured stagger between power-ons. Returns at once; nodes
still waiting for their turn are listed as queued.
` + globalFlagsUsage

const offUsage = `usage: headnode off [pN ...]

Powers the named nodes off (all of them when none is named), at once; a
queued power-on of those nodes is cancelled.
` + globalFlagsUsage

const alertUsage = `usage: headnode alert on|off [pN ...]

Switches the alert LED of every power board, or with nodes named, of the
boards those nodes are on.
` + globalFlagsUsage

const hubUsage = `usage: headnode hub on|off|reset

Switches the power board's USB hub on or off, or resets it (off, then on).
` + globalFlagsUsage

const ledsUsage = `usage: headnode leds on|off

Switches the power boards' own node LEDs (and a ClusterCTRL's power LED);
never a node's power. "headnode led on|off" is the same.
` + globalFlagsUsage

const wpUsage = `usage: headnode wp on|off

Switches the write protection of a ClusterHAT v2.x's HAT EEPROM. It cannot
be turned off while the board's WP solder link is bridged.
` + globalFlagsUsage

const fanUsage = `usage: headnode fan on|off [c|ORDER]

Switches fans: without an argument every fan, with c the head node's own
([power] fan_gpio), with an order the ClusterCTRL board's of that order
(Triple, A+6; a Stack takes it as a request on top of its nodes').
` + globalFlagsUsage

const actUsage = `usage: headnode act on|off [ORDER]

Enables or disables the activity LED of the ClusterCTRL A+6 boards, or of
the one of that order.
` + globalFlagsUsage

const usbbootUsage = `usage: headnode usbboot on|off pN ...

Drives the USBBOOT line of ClusterCTRL nodes (Single, Triple): on, the node
boots from USB (rpiboot) at its next power-on. ClusterHAT nodes have none.
` + globalFlagsUsage

const getpathUsage = `usage: headnode getpath [pN ...]

Prints each node's USB path (all nodes when none is named), as the kernel
names the port, e.g. "p1: 1-1.3.4": how rpiboot tells the nodes apart.
Finding a ClusterHAT v2/v3's hub among others with its IDs switches the
hub off for a second; a v1's is [power] hat_usb_path.
` + globalFlagsUsage

const setorderUsage = `usage: headnode setorder OLD NEW

Gives the ClusterCTRL board of order OLD the order NEW, which renumbers the
nodes (ClusterCTRL nodes are numbered by their boards' orders). It lasts
until the board restarts; "headnode save NEW order" keeps it.
` + globalFlagsUsage

const saveUsage = `usage: headnode save ORDER [all|order|usbboot|pos|leds|defaults]

Saves settings of the ClusterCTRL board of that order to its EEPROM: all
(the default: order, LEDs, the nodes' power now as their power-on state,
USBBOOT), or one of them (pos is the power-on state), or defaults (the
factory settings: order 20, every node off at power-on).
` + globalFlagsUsage

const resetUsage = `usage: headnode reset ORDER

Restarts the controller of the ClusterCTRL board of that order: its nodes
lose power and come up as its saved power-on state says.
` + globalFlagsUsage

const ledUsage = `usage: headnode led identify|stopped|auto

Sets the status LED: identify blinks white for 30 s to find the machine,
stopped shows the stopped pattern until auto, auto follows the cluster's
health. stopped also works without a running daemon (systemd's
ExecStopPost). "led on|off" switches the boards' node LEDs, as leds does
(and as the official clusterctrl's "led" does).
` + globalFlagsUsage

const consoleUsage = `usage: headnode console pN [--log | --follow | --read-only | --take]

Attaches the terminal to node pN's serial console through the daemon, which
captures every node's console from the moment its device appears (the USB
gadget of a ClusterHAT or ClusterCTRL node, or the [[nodes]] console device).
What you type goes to the node, what it prints comes to you.

  Ctrl-]        detaches (the node's console keeps being captured)

Several sessions can watch one console; one at a time writes. While another
session writes, attaching fails and says so: --read-only watches, --take
takes writing over (the other session ends). The session ends with a message
when the node is powered off or the daemon stops; when the console device
goes away and the node still has power (it reboots), the session waits for
it to come back. The terminal's settings are restored however it ends. Exit
status: 0 after Ctrl-], 1 when the session was ended for you.

  --log         print what the buffer holds, with times, and exit
  --follow      print the buffer, then each line as the node prints it

Lines printed by --log, --follow and status have escape sequences removed
and control characters written as \xNN.
` + globalFlagsUsage

const natUsage = `usage: headnode nat status|apply|clear [--json]

status shows the NAT and forwarding rules and the uplink; apply puts them in
place; clear removes them. Through the daemon when it runs (so it does not
undo a clear), otherwise directly. --json prints the result as JSON.
` + globalFlagsUsage

const configUsage = `usage: headnode config check [--config FILE] | default

check reads and validates the configuration file and names every problem;
default prints the built-in configuration (the file the package installs).
` + globalFlagsUsage

const snmpUsage = `usage: headnode snmp [--url URL]

Serves the cluster's state to net-snmp's snmpd through its pass_persist
protocol (requests on stdin, answers on stdout): health, the uplink, NAT
and the node table of HEADNODE-MIB (/usr/share/headnode/mibs), under
` + snmp.Base + `. snmpd starts it; add to
/etc/snmp/snmpd.conf:

  view systemonly included ` + snmp.Base + `
  pass_persist ` + snmp.Base + ` /usr/bin/headnode snmp

(the view line lets Debian's default community see the subtree).

It reads the daemon's status from the read-only status page, not the
control socket, so snmpd's unprivileged user can run it.

Flags:
  --url URL    the status page (default: http:// and the first [http]
               listen address of the configuration, http://127.0.0.1:9180/)
` + globalFlagsUsage

const versionUsage = `usage: headnode version

Prints the version, the Go version and the platform.
`
