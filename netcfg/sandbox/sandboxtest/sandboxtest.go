// Package sandboxtest decides what a test does when it cannot build network
// namespaces: skip on a developer's machine without root, fail in CI.
package sandboxtest

import (
	"os"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox"
)

// RequireEnv, when set (CI and `build.sh test` set it), turns a skip for
// missing namespace support into a failure, so CI can never pass by
// skipping the kernel tests.
const RequireEnv = "HEADNODE_REQUIRE_NETNS"

// Need skips or fails t when namespaces are unavailable.
func Need(t testing.TB) {
	t.Helper()
	if err := sandbox.Check(); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (and %s is set, so this is a failure, not a skip)", err, RequireEnv)
		}
		t.Skip(err)
	}
}
