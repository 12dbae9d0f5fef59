package cli

import (
	"fmt"
	"strings"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
)

// manPage is headnode(8), written from the texts --help prints: the
// general usage's command list for the synopsis, each command's usage for
// its section, the global flags and the exit codes. `headnode __man`
// prints it; build.sh deb installs it as /usr/share/man/man8/headnode.8.gz,
// so the manual cannot say something the help does not.
func manPage(version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH HEADNODE 8 \"\" \"headnode %s\" \"System Administration\"\n", roffEscape(version))
	b.WriteString(".SH NAME\nheadnode \\- head node daemon and command line of a Raspberry Pi cluster\n")
	b.WriteString(".SH SYNOPSIS\n.B headnode\n.I command\n.RI [ arguments ]\n.br\n.B clusterctrl\n.RI [ arguments ]\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString("headnode runs the head node of a Raspberry Pi cluster: NAT between the cluster\n" +
		"network and the uplink, node power on ClusterHAT and ClusterCTRL boards, DHCP\n" +
		"for the nodes, the uplink address on an I2C LCD, the cluster's health on a\n" +
		"BlinkStick LED, a status page and a control socket.\n" +
		"The daemon is started by systemd as\n.BR \"headnode daemon\" ;\n" +
		"the other commands talk to it over the control socket.\n" +
		"Run as\n.BR clusterctrl ,\nthe binary takes the official ClusterHAT tool's command line.\n")
	b.WriteString(".PP\nThe commands:\n")
	list, _, _ := strings.Cut(strings.TrimPrefix(usage, "usage: headnode <command> [arguments]\n\n"), "\nGlobal flags")
	roffBlock(&b, strings.TrimRight(list, "\n"), true)
	b.WriteString(".SH COMMANDS\n")
	for _, name := range commandNames {
		text := strings.TrimSuffix(commands[name].usage(), globalFlagsUsage)
		first, body, _ := strings.Cut(text, "\n")
		fmt.Fprintf(&b, ".SS %s\n", roffEscape(strings.TrimPrefix(first, "usage: ")))
		for _, para := range strings.Split(strings.Trim(body, "\n"), "\n\n") {
			lines := strings.Split(para, "\n")
			pre := false
			for _, l := range lines {
				if strings.HasPrefix(l, "  ") {
					pre = true
				}
			}
			if pre {
				roffBlock(&b, para, false)
			} else {
				b.WriteString(".PP\n")
				for _, l := range lines {
					b.WriteString(roffLine(strings.TrimSpace(l)) + "\n")
				}
			}
		}
	}
	b.WriteString(".SH GLOBAL FLAGS\n")
	roffBlock(&b, strings.TrimPrefix(strings.Trim(globalFlagsUsage, "\n"), "Global flags (before or after the command):\n"), false)
	b.WriteString(".PP\nThey go before or after the command.\n")
	b.WriteString(".SH EXIT STATUS\n")
	_, codes, _ := strings.Cut(usage, "Exit codes: ")
	b.WriteString(roffLine("Exit codes: "+strings.Join(strings.Fields(codes), " ")) + "\n")
	fmt.Fprintf(&b, ".SH FILES\n.TP\n.I %s\nthe configuration;\n.B headnode config default\nprints the built-in one.\n", roffEscape(config.DefaultPath))
	b.WriteString(".TP\n.I /usr/share/doc/headnode/README.md\nthe full documentation.\n")
	b.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1)\n")
	return b.String()
}

// roffBlock writes text as it is laid out (no filling), indented.
func roffBlock(b *strings.Builder, text string, indent bool) {
	if indent {
		b.WriteString(".RS 2\n")
	} else {
		b.WriteString(".PP\n.RS 2\n")
	}
	b.WriteString(".nf\n")
	for _, l := range strings.Split(text, "\n") {
		b.WriteString(roffLine(strings.TrimPrefix(l, "  ")) + "\n")
	}
	b.WriteString(".fi\n.RE\n")
}

// roffLine escapes a text line: a leading . or ' would be a request.
func roffLine(s string) string {
	s = roffEscape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffEscape escapes backslashes and writes - as the minus sign (\-) that
// flags are typed with.
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
}
