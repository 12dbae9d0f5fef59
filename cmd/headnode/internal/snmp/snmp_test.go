package snmp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func sample() *api.Status {
	return &api.Status{
		Health: api.Health{State: api.HealthDegraded, Reasons: []string{"p3 unreachable", "LCD missing: no answer"}},
		Uplink: api.Link{Interface: "eth1", Exists: true, Carrier: true, Address: "10.99.0.2/24"},
		NAT:    api.NAT{State: api.NATOK, Repairs: 3},
		Power: api.Power{Nodes: []api.Node{
			{Name: "p10", State: api.NodeUnknown, Address: "192.168.50.20"},
			{Name: "p1", State: api.NodeUp, Powered: yes(), Address: "192.168.50.11"},
			{Name: "p3", State: api.NodeUnreachable, Powered: yes(), Address: "192.168.50.13"},
			{Name: "p2", State: api.NodeOff, Powered: no()},
		}},
	}
}

// The subtree of a status, in OID order: scalars, then the table column
// by column, rows by node number (p10 after p3).
func TestVars(t *testing.T) {
	var got []string
	for _, v := range Vars(sample(), nil) {
		got = append(got, fmt.Sprintf("%s %s %s %s", strings.TrimPrefix(v.OID.String(), Base), v.Name, v.Type, v.Value))
	}
	want := []string{
		".1.1.0 hnHealth integer 3",
		".1.2.0 hnHealthReasons string p3 unreachable; LCD missing: no answer",
		".1.3.0 hnUplinkInterface string eth1",
		".1.4.0 hnUplinkUp integer 1",
		".1.5.0 hnUplinkAddress ipaddress 10.99.0.2",
		".1.6.0 hnUplinkPrefixLength gauge 24",
		".1.7.0 hnNATState integer 1",
		".1.8.0 hnNATRepairs counter 3",
		".1.9.1.2.1 hnNodeName string p1", ".1.9.1.2.2 hnNodeName string p2", ".1.9.1.2.3 hnNodeName string p3", ".1.9.1.2.10 hnNodeName string p10",
		".1.9.1.3.1 hnNodePower integer 1", ".1.9.1.3.2 hnNodePower integer 2", ".1.9.1.3.3 hnNodePower integer 1", ".1.9.1.3.10 hnNodePower integer 3",
		".1.9.1.4.1 hnNodeState integer 3", ".1.9.1.4.2 hnNodeState integer 1", ".1.9.1.4.3 hnNodeState integer 4", ".1.9.1.4.10 hnNodeState integer 5",
		".1.9.1.5.1 hnNodeAddress ipaddress 192.168.50.11", ".1.9.1.5.2 hnNodeAddress ipaddress 0.0.0.0", ".1.9.1.5.3 hnNodeAddress ipaddress 192.168.50.13", ".1.9.1.5.10 hnNodeAddress ipaddress 192.168.50.20",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	down := Vars(nil, errors.New("the headnode daemon does not answer at http://127.0.0.1:9180/\n(connection refused)"))
	if len(down) != 2 || down[0].Value != "6" || down[1].Value != "the headnode daemon does not answer at http://127.0.0.1:9180/ (connection refused)" {
		t.Errorf("without a daemon: %+v", down)
	}
}

// A pass_persist conversation as snmpd has it.
func TestServe(t *testing.T) {
	vars := Vars(sample(), nil)
	calls := 0
	in := strings.Join([]string{
		"PING",
		"get", Base + ".1.1.0",
		"get", Base + ".1.1", // not an instance
		"getnext", Base, // the first object
		"getnext", Base + ".1.8.0", // from the scalars into the table
		"getnext", Base + ".1.9.1.2.3",
		"getnext", Base + ".1.9.1.5.10", // the last
		"getnext", "not.an.oid",
		"set", Base + ".1.1.0", "integer 2",
		"",
		"frobnicate",
		"PING",
	}, "\n") + "\n"
	var out strings.Builder
	if err := Serve(strings.NewReader(in), &out, func() []Var { calls++; return vars }); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"PONG",
		Base + ".1.1.0", "integer", "3",
		"NONE",
		Base + ".1.1.0", "integer", "3",
		Base + ".1.9.1.2.1", "string", "p1",
		Base + ".1.9.1.2.10", "string", "p10",
		"NONE",
		"NONE",
		"not-writable",
		"NONE",
		"PONG",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if calls != 6 {
		t.Errorf("the status was asked for %d times, want once per get/getnext with a valid OID (6)", calls)
	}
}

// baseMIBs finds SNMPv2-SMI, -TC and -CONF, which Debian main ships in
// erlang-snmp (libsmi and net-snmp's packages leave them out).
func baseMIBs(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/erlang/lib/snmp-*/mibs")
	for _, d := range dirs {
		if ok, _ := filepath.Glob(filepath.Join(d, "SNMPv2-SMI.mib")); len(ok) == 1 {
			return d
		}
	}
	t.Fatalf("SNMPv2-SMI.mib not found in /usr/lib/erlang/lib/snmp-*/mibs: install the Debian package erlang-snmp (the base MIB modules; Debian's own copies are in non-free)")
	return ""
}

// netSnmpMIBs is where libsnmp-base puts NET-SNMP-MIB (netSnmpPlaypen).
const netSnmpMIBs = "/usr/share/snmp/mibs"

// smilint (Debian's smitools) finds nothing wrong with the MIB, at its
// strictest level; it exits 0 either way, so its output is what counts.
func TestMIBLintsClean(t *testing.T) {
	smilint, err := exec.LookPath("smilint")
	if err != nil {
		t.Fatalf("smilint not installed (Debian package smitools): %v", err)
	}
	cmd := exec.Command(smilint, "-l", "9", "-s", "./HEADNODE-MIB.txt")
	cmd.Env = []string{"SMIPATH=" + baseMIBs(t) + ":" + netSnmpMIBs}
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("smilint -l 9: %v\n%s", err, out)
	}
	// It does look: without the base modules it complains.
	cmd = exec.Command(smilint, "-l", "9", "-s", "./HEADNODE-MIB.txt")
	cmd.Env = []string{"SMIPATH=" + netSnmpMIBs}
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "failed to locate MIB module `SNMPv2-SMI'") {
		t.Errorf("smilint without SNMPv2-SMI said %q", out)
	}
}

// net-snmp loads the MIB, and every object Vars serves has the OID the
// MIB gives its name.
func TestMIBMatchesTheCode(t *testing.T) {
	snmptranslate, err := exec.LookPath("snmptranslate")
	if err != nil {
		t.Fatalf("snmptranslate not installed (Debian package snmp): %v", err)
	}
	dirs := baseMIBs(t) + ":" + netSnmpMIBs + ":."
	// The answer is on standard output; net-snmp's notes go to standard
	// error (on a machine where no net-snmp tool ran yet, the first run
	// says "Created directory: .../cert_indexes"), into the error. Its
	// persistent directory is the test's own.
	persistent := t.TempDir()
	translate := func(args ...string) ([]byte, error) {
		cmd := exec.Command(snmptranslate, args...)
		cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+persistent)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out, err
	}
	seen := map[string]bool{}
	for _, v := range Vars(sample(), nil) {
		// The object: the OID without its instance (.0 for a scalar,
		// the node number in the table).
		col := v.OID[:len(v.OID)-1]
		if seen[v.Name] {
			continue
		}
		seen[v.Name] = true
		out, err := translate("-M", dirs, "-m", "HEADNODE-MIB", "-On", "HEADNODE-MIB::"+v.Name)
		if got := strings.TrimSpace(string(out)); err != nil || got != col.String() {
			t.Errorf("snmptranslate HEADNODE-MIB::%s: %q %v, want %s", v.Name, got, err, col)
		}
	}
	if len(seen) != 12 {
		t.Errorf("%d objects checked, want the MIB's 12 read-only objects", len(seen))
	}
	out, err := translate("-M", dirs, "-m", "HEADNODE-MIB", "-On", "HEADNODE-MIB::headnodeMIB")
	if strings.TrimSpace(string(out)) != Base || err != nil {
		t.Errorf("headnodeMIB is %q (%v), want %s", out, err, Base)
	}
}
