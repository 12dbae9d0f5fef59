// Go 1.25's runtime re-reads the CPU affinity and cgroup limit every
// second to adjust GOMAXPROCS: a wake-up of its own on an idle head (see
// hw/wake), and headnode is not run under changing CPU limits.
//
//go:debug updatemaxprocs=0

// Command headnode is the head-node daemon of a Raspberry Pi cluster and its
// control CLI: NAT between the cluster and the uplink, node power, the
// uplink address on an LCD and cluster health on a USB LED. See README.md.
package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/headnode/headnode/cmd/headnode/internal/cli"
)

// version is stamped by build.sh with -X main.version=...
var version = "dev"

func main() {
	// Installed as clusterctrl (or the official image's clusterhat link
	// to it), it is the official tool's command line.
	switch filepath.Base(os.Args[0]) {
	case "clusterctrl", "clusterhat":
		// The official tool names itself by the path it was run from, as
		// Python's sys.argv[0] is for a script found on PATH.
		prog := os.Args[0]
		if !strings.Contains(prog, "/") {
			if p, err := exec.LookPath(prog); err == nil {
				prog = p
			}
		}
		os.Exit(cli.Clusterctrl(prog, os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(cli.Main(os.Args[1:], version, os.Stdout, os.Stderr))
}
