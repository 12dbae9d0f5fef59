package dhcpd

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The tests start real processes (DHCP clients and servers, ip); none may
// outlive them. The test binary is also the server process the crash
// tests kill (child.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(sandboxtest.Run(m))
}
