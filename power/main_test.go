package power

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The probe benchmarks start processes (ip -batch in namespaces); none may
// outlive them.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Run(m)) }
