package main

// SNMP through net-snmp: Debian's snmpd in the head namespace runs
// `headnode snmp` with the pass_persist line from the README, and Debian's
// snmpwalk walks the subtree from the uplink namespace.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/snmp"
	"github.com/headnode/headnode/netcfg/sandbox"
)

// walkLine is one line of snmpwalk: ".1.3.6... = TYPE: value" (-On) or
// "HEADNODE-MIB::hnHealth.0 = INTEGER: ok(2)".
var walkLine = regexp.MustCompile(`^(\S+) = (?:([A-Za-z0-9]+): )?(.*)$`)

// walk runs snmpwalk in ns and returns the values by OID (quotes removed).
func walk(t *testing.T, ns *sandbox.NS, args ...string) map[string]string {
	t.Helper()
	out, err := ns.Run("snmpwalk", append([]string{"-v2c", "-c", "public", "-t", "3", "-r", "1"}, args...)...)
	if err != nil {
		t.Fatalf("snmpwalk: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := walkLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("snmpwalk line %q", line)
		}
		if strings.HasPrefix(m[3], "No more variables left in this MIB View") {
			continue // the end of the walk (endOfMibView)
		}
		got[m[1]] = strings.Trim(m[3], `"`)
	}
	return got
}

func TestE2ESNMP(t *testing.T) {
	c := newCluster(t, 2)
	cfg := c.config(t, "")
	d := c.startDaemon(t, cfg)
	c.followPower(t, d)
	c.powerOn(t, d, "p1")

	// The README's snmpd.conf lines, with this test's binary and
	// configuration, on the head's uplink address.
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmpd.conf")
	must(t, os.WriteFile(conf, []byte(fmt.Sprintf(`agentaddress udp:10.99.0.2:161
view systemonly included .1.3.6.1.2.1.1
view systemonly included %[1]s
rocommunity public 10.99.0.0/24 -V systemonly
pass_persist %[1]s %[2]s snmp --config %[3]s
`, snmp.Base, binary, cfg)), 0o644))
	background(t, c.head, "env", "SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"),
		"snmpd", "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(dir, "snmpd.pid"))

	// Walk until snmpd answers with the whole table.
	var got map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := c.outside.Run("snmpwalk", "-v2c", "-c", "public", "-t", "1", "-r", "0", "-On", "10.99.0.2", snmp.Base)
		if err == nil && strings.Contains(out, snmp.Base+".1.9.1.5.4 = ") {
			got = walk(t, c.outside, "-On", "10.99.0.2", snmp.Base)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmpd does not serve the subtree within 10 s: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	statusOut, _, code := run(t, nil, "status", "--json", "--socket", c.sock)
	if code != 0 {
		t.Fatal("status --json failed")
	}
	var s api.Status
	must(t, json.Unmarshal([]byte(statusOut), &s))

	// The node table is headnode status --json's.
	power := func(p *bool) string {
		switch {
		case p == nil:
			return "3"
		case *p:
			return "1"
		}
		return "2"
	}
	state := map[string]string{api.NodeOff: "1", api.NodeBooting: "2", api.NodeUp: "3", api.NodeUnreachable: "4", api.NodeUnknown: "5"}
	rows := 0
	for _, n := range s.Power.Nodes {
		i := strings.TrimPrefix(n.Name, "p")
		cell := func(col int) string { return got[fmt.Sprintf("%s.1.9.1.%d.%s", snmp.Base, col, i)] }
		if cell(2) != n.Name || cell(3) != power(n.Powered) || cell(4) != state[n.State] || cell(5) != n.Address {
			t.Errorf("row %s: name %q power %q state %q address %q; status --json: %s %s %s %s",
				i, cell(2), cell(3), cell(4), cell(5), n.Name, power(n.Powered), n.State, n.Address)
		}
		rows++
	}
	if rows != 4 || len(got) != 8+4*rows {
		t.Errorf("%d nodes in the status, %d values walked:\n%v", rows, len(got), got)
	}
	scalar := func(n int) string { return got[snmp.Base+".1."+strconv.Itoa(n)+".0"] }
	if scalar(1) != "2" || scalar(3) != "eth1" || scalar(4) != "1" || scalar(5) != "10.99.0.2" || scalar(6) != "24" || scalar(7) != "1" {
		t.Errorf("scalars: health %s uplink %s up %s address %s/%s NAT %s; status: %s %s %s",
			scalar(1), scalar(3), scalar(4), scalar(5), scalar(6), scalar(7), s.Health.State, s.Uplink.Address, s.NAT.State)
	}

	// With the MIB, net-snmp names the objects and their values.
	named := walk(t, c.outside, "-M", baseMIBDir(t)+":/usr/share/snmp/mibs:internal/snmp", "-m", "HEADNODE-MIB", "10.99.0.2", snmp.Base)
	for k, v := range map[string]string{
		"HEADNODE-MIB::hnHealth.0":        "ok(2)",
		"HEADNODE-MIB::hnNodeName.1":      "p1",
		"HEADNODE-MIB::hnNodeState.1":     "up(3)",
		"HEADNODE-MIB::hnNodeState.2":     "off(1)",
		"HEADNODE-MIB::hnNodePower.2":     "off(2)",
		"HEADNODE-MIB::hnNodeAddress.1":   "192.168.50.11",
		"HEADNODE-MIB::hnUplinkAddress.0": "10.99.0.2",
		"HEADNODE-MIB::hnNATState.0":      "ok(1)",
	} {
		if named[k] != v {
			t.Errorf("%s = %q, want %q", k, named[k], v)
		}
	}

	// The daemon stops: the subtree says so.
	d.stop(t)
	time.Sleep(1100 * time.Millisecond) // the last status fetched is kept 1 s
	got = walk(t, c.outside, "-On", "10.99.0.2", snmp.Base)
	if len(got) != 2 || scalar(1) != "6" || !strings.Contains(scalar(2), "the headnode daemon does not answer at http://127.0.0.1:9180/") {
		t.Errorf("without a daemon: %v", got)
	}
}

// baseMIBDir is where Debian's erlang-snmp has SNMPv2-SMI and friends.
func baseMIBDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/erlang/lib/snmp-*/mibs")
	if len(dirs) == 0 {
		t.Fatal("no /usr/lib/erlang/lib/snmp-*/mibs: install the Debian package erlang-snmp (the base MIB modules)")
	}
	return dirs[0]
}
