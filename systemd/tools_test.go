package systemd_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// The tests of the shipped files, the packages and the image run the
// system's tools (systemd-analyze, dpkg, losetup, mtools, qemu). need skips
// a test when a tool or root is missing, and fails it instead when
// HEADNODE_REQUIRE_NETNS is set (CI, `build.sh test`), so CI cannot pass by
// skipping.
func need(t *testing.T, root bool, cmds ...string) {
	t.Helper()
	var missing []string
	for _, c := range cmds {
		if _, err := lookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	msg := ""
	if len(missing) > 0 {
		msg = "missing commands: " + strings.Join(missing, ", ") + " (./build.sh deps installs them)"
	}
	if root && os.Geteuid() != 0 {
		msg = strings.TrimPrefix(msg+"; needs root", "; ")
	}
	if msg != "" {
		prerequisiteMissing(t, msg)
	}
}

// prerequisiteMissing skips t for a missing prerequisite, or fails it when
// HEADNODE_REQUIRE_NETNS is set.
func prerequisiteMissing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv(sandboxtest.RequireEnv) != "" {
		t.Fatalf("%s (and %s is set, so this is a failure, not a skip)", msg, sandboxtest.RequireEnv)
	}
	t.Skip(msg)
}

// lookPath also searches the sbin directories, which a user's PATH lacks.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/lib/systemd", "/lib/systemd"} {
		if st, serr := os.Stat(filepath.Join(dir, name)); serr == nil && st.Mode()&0o111 != 0 {
			return filepath.Join(dir, name), nil
		}
	}
	return "", err
}

// run runs a command and returns its stdout, failing the test with the
// command's stderr when it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, stderr, err := runErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// runErr runs a command and returns its stdout, stderr and error.
func runErr(env []string, name string, args ...string) (string, string, error) {
	return command(env, "", name, args...)
}

// runStdin runs cmd with stdin as its input.
func runStdin(stdin string, cmd ...string) (string, string, error) {
	return command(nil, stdin, cmd[0], cmd[1:]...)
}

func command(env []string, stdin, name string, args ...string) (string, string, error) {
	path, err := lookPath(name)
	if err != nil {
		return "", "", err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

// elfOf returns the machine and class of an ELF executable.
func elfOf(t *testing.T, path string) (elf.Machine, elf.Class) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Machine, f.Class
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// repo returns the repository's root directory.
func repo(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
