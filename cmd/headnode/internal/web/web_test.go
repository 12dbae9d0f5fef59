package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

func boolPtr(b bool) *bool { return &b }

// The board facts reach the metrics as gauges in base units and the page
// in words; promtool lints the scrape.
func TestBoardFactsOnMetricsAndPage(t *testing.T) {
	fan := 0b101
	wl := 1
	s := &api.Status{Health: api.Health{State: api.HealthOK}, Power: api.Power{
		Head: api.Head{Revision: "0x00d04170", Pi5: true, Throttled: "0x50005", ThrottledSource: "firmware", UnderVoltage: true, UnderVoltageOccurred: true, Throttling: true,
			Fan: boolPtr(true), FanGPIO: 18},
		Boards: []api.PowerBoard{
			{Model: "ClusterHAT v2.5", Kind: "clusterhat", Nodes: "p1-p4", First: 1, Count: 4, State: "ok", WP: boolPtr(true), WPLink: &wl, UUID: "622aef87", Vendor: "8086 Consultancy"},
			{Model: "ClusterCTRL Stack", Kind: "clusterctrl", Nodes: "p5-p9", First: 5, Count: 5, State: "ok", Order: 20, Firmware: "1.8",
				FanStatus: &fan, Fan: boolPtr(true), Voltages: []api.Voltage{{ADC: 1, Type: 1, Raw: 791, Volts: 5.0982421875}, {ADC: 2, Type: 2, Raw: 360, Volts: 12.0027}},
				Temperature: &api.Reading{Raw: 277, Celsius: 24.59}},
		},
		Nodes: []api.Node{{Name: "p5", State: "off", Powered: boolPtr(false), USBBoot: boolPtr(true)}}}}
	metrics := scrape(t, func() *api.Status { return s })
	for _, want := range []string{
		`headnode_clusterctrl_voltage_volts{adc="1",order="20",type="1"} 5.0982421875`,
		`headnode_clusterctrl_voltage_volts{adc="2",order="20",type="2"} 12.0027`,
		`headnode_clusterctrl_temperature_celsius{order="20"} 24.59`,
		`headnode_power_board_fan_on{model="ClusterCTRL Stack",order="20"} 1`,
		`headnode_node_cooling_requested{node="p6"} 1`,
		`headnode_node_cooling_requested{node="p5"} 0`,
		`headnode_node_usbboot{node="p5"} 1`,
		`headnode_clusterhat_eeprom_write_protected{model="ClusterHAT v2.5"} 1`,
		`headnode_head_throttling{flag="under_voltage",when="now"} 1`,
		`headnode_head_throttling{flag="under_voltage",when="occurred"} 1`,
		`headnode_head_throttling{flag="frequency_capped",when="now"} 0`,
		`headnode_head_fan_on{gpio="18"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	srv := httptest.NewServer(Handler(func() *api.Status { return s }))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	for _, want := range []string{"Raspberry Pi 5", "under-voltage now", "throttled", "(GPIO18)", "EEPROM write-protected", "5.10 V", "12.00 V", "24.6 °C", "8086 Consultancy · 622aef87", "order 20"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
