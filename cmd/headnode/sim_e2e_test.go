package main

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/headnode/headnode/netcfg/sandbox/sandboxtest"
)

// `headnode sim` as a newcomer runs it: the whole daemon on the emulated
// ClusterHAT, LCD and BlinkStick, in a namespace sandbox where each node's
// link follows its power. The test drives it with the CLI it prints and
// reads what it draws.
func TestE2ESim(t *testing.T) {
	sandboxtest.Need(t)
	sim := startSim(t, fmt.Sprintf("hs%d", os.Getpid()%100000), "--duration", "40s", "--boot", "300ms", "--listen", "127.0.0.1:0")
	waitFor, headnode := sim.waitFor, sim.mustHeadnode
	pic := waitFor("the uplink address on the LCD", regexp.MustCompile(`│10\.99\.0\.2 +│`))
	page := regexp.MustCompile(`status page: (http://\S+)`).FindStringSubmatch(pic)
	if page == nil {
		t.Fatalf("the picture does not say where the status page is:\n%s", pic)
	}

	headnode("on", "p1", "p2")
	pic = waitFor("p1 and p2 up and out through the head", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 +out as 10\.99\.0\.2\n  p2 +up +on +ethpi2 +192\.168\.50\.12 +out as 10\.99\.0\.2`))
	if !strings.Contains(pic, "│2/4 up  NAT ok  │") || !strings.Contains(pic, "DHCP     serving, 2 leases") {
		t.Errorf("after on p1 p2:\n%s", pic)
	}

	// Off really takes p2 off the network; it is no fault.
	headnode("off", "p2")
	pic = waitFor("p2 off and unplugged", regexp.MustCompile(`(?m)^  p2 +off +off +- +- +-`))
	if !strings.Contains(pic, "health   ok") {
		t.Errorf("p2 off by request is a fault:\n%s", pic)
	}

	// The HAT's USB hub off takes the powered p1's gadget link with it,
	// as a real hub does; on again, p1 comes back and asks DHCP again.
	headnode("hub", "off")
	waitFor("p1's link gone with the hub", regexp.MustCompile(`(?m)^  p1 +\S+ +on +- +- +`))
	headnode("hub", "on")
	waitFor("p1 back after the hub", regexp.MustCompile(`(?m)^  p1 +up +on +ethpi1 +192\.168\.50\.11 +out as 10\.99\.0\.2`))

	resp, err := http.Get(page[1] + "healthz")
	if err != nil {
		t.Fatalf("status page: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}

	// Stopped by SIGTERM, it exits cleanly and removes its namespaces.
	if err := sim.stop(); err != nil {
		t.Fatal(err)
	}
	if sim.err != nil {
		t.Errorf("sim exit: %v", sim.err)
	}
	sim.checkNamespacesGone()
}
