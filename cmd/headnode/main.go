// Command headnode is the head-node daemon of a Raspberry Pi cluster and its
// control CLI: NAT between the cluster and the uplink, node power, the
// uplink address on an LCD and cluster health on a USB LED. See README.md.
package main

import (
	"os"

	"github.com/headnode/headnode/cmd/headnode/internal/cli"
)

// version is stamped by build.sh with -X main.version=...
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], version, os.Stdout, os.Stderr))
}
