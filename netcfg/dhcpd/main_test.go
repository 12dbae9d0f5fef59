package dhcpd

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The tests start real processes (DHCP clients and servers, ip); none may
// outlive them.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
