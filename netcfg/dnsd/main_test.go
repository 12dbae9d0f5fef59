package dnsd

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The kernel tests start processes (ip); none may outlive them.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
