package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// `headnode sim --topology`: the one-port ClusterHAT finds its uplink from
// the LAN's DHCP server with no network configuration, and its nodes get
// out through it; swapped cables say so on the LCD.
func TestE2ESimTopologies(t *testing.T) {
	sandboxtest.Need(t)
	for i, tc := range []struct {
		topology string
		check    func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string))
	}{
		{"clusterhat", func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string)) {
			pic := wait("eth0's address from the LAN on the LCD", regexp.MustCompile(`│(10\.99\.0\.1\d\d) +│`))
			addr := regexp.MustCompile(`│(10\.99\.0\.1\d\d) +│`).FindStringSubmatch(pic)[1]
			if !strings.Contains(pic, "uplink   eth0 "+addr+"/24") || !strings.Contains(pic, "cluster  br0 10.213.0.1/24") {
				t.Errorf("roles:\n%s", pic)
			}
			headnode("on", "p1")
			wait("p1 out through eth0", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +10\.213\.0\.11 +out as `+regexp.QuoteMeta(addr)))
		}},
		{"lan-clash", func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string)) {
			// The LAN is on the first candidate subnet: the cluster takes
			// the next one and never holds the LAN router's address.
			wait("eth0's address from the clashing LAN on the LCD", regexp.MustCompile(`│(10\.213\.0\.1\d\d) +│`))
			wait("the cluster moved to the next candidate", regexp.MustCompile(`cluster  br0 172\.16\.231\.1/24`))
			headnode("on", "p1")
			wait("p1 leased in the free subnet", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +172\.16\.231\.11 `))
		}},
		{"swapped", func(t *testing.T, wait func(string, *regexp.Regexp) string, headnode func(...string)) {
			pic := wait("the LAN on the cluster side on the LCD", regexp.MustCompile(`│eth0 is a LAN +│`))
			if !strings.Contains(pic, "problem  cluster interface eth0") || !strings.Contains(pic, "swap the cables") {
				t.Errorf("no problem line:\n%s", pic)
			}
		}},
	} {
		t.Run(tc.topology, func(t *testing.T) {
			sim := startSim(t, fmt.Sprintf("ht%d%d", os.Getpid()%10000, i),
				"--topology", tc.topology, "--duration", "40s", "--boot", "300ms", "--listen", "127.0.0.1:0")
			tc.check(t, sim.waitFor, sim.mustHeadnode)
		})
	}
}
