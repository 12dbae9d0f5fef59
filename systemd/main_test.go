package systemd_test

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The tests start real processes (systemd-nspawn, systemd-analyze, the
// maintainer scripts); none may outlive them.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
