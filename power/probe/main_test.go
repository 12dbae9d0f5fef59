package probe_test

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The kernel tests run commands in network namespaces; none may outlive
// them.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
