package web

import (
	"runtime"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// collector turns the published status into metrics at scrape time, so
// metrics never disagree with the status page. Names follow Prometheus
// conventions: headnode_ prefix, base units, _total for counters, enum
// states as one series per state.
type collector struct {
	current func() *api.Status
}

func newCollector(current func() *api.Status) *collector { return &collector{current: current} }

var healthStates = []string{api.HealthStarting, api.HealthOK, api.HealthDegraded, api.HealthFailed, api.HealthStopped}
var natStates = []string{api.NATOK, api.NATApplying, api.NATWaiting, api.NATFailed, api.NATCleared, api.NATDisabled}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("headnode_"+name, help, labels, nil)
}

var (
	buildInfo     = desc("build_info", "Build information; always 1.", "version", "goversion")
	healthState   = desc("health_state", "Overall health: 1 for the current state.", "state")
	failureClass  = desc("health_failure_class", "LED blink code of the current failure: 1 config, 2 NAT, 3 board/bus, 4 uplink; 0 when not failed.")
	natState      = desc("nat_state", "NAT state: 1 for the current state.", "state")
	natRules      = desc("nat_rules_present", "1 when every NAT rule and chain is in place.")
	natForwarding = desc("nat_forwarding_enabled", "1 when IPv4 forwarding is on.")
	natRepairs    = desc("nat_repairs_total", "Times the NAT rules were restored after another program removed them.")
	linkUp        = desc("link_up", "1 when the interface exists and has carrier.", "role", "interface")
	linkInfo      = desc("link_address_info", "The interface's primary IPv4 address; always 1.", "role", "interface", "address")
	addrChanges   = desc("link_address_changes_total", "Primary IPv4 address changes seen since the daemon started.", "role", "interface")
	reloadOK      = desc("config_last_reload_successful", "1 when the last configuration (re)load succeeded.")
	reloadTime    = desc("config_last_reload_success_timestamp_seconds", "When the running configuration was loaded.")
	reloadsFailed = desc("config_reloads_failed_total", "Reloads that failed and kept the running configuration.")
	restartNeeded = desc("config_restart_needed", "Settings changed in the file that take effect only at the next restart.")
	notApplied    = desc("config_not_applied", "Settings the daemon could not put into effect (see headnode status).")
	startTime     = desc("start_time_seconds", "When the daemon started.")
	ready         = desc("ready", "1 once the daemon has applied NAT and signalled readiness.")
	nodeState     = desc("node_state", "Node lifecycle: 1 for the current state.", "node", "state")
	nodePowered   = desc("node_power_on", "1 when the node's power is on, read back from the board.", "node")
	nodeUp        = desc("node_up", "1 when the node answers the reachability probe.", "node")
	boardInfo     = desc("power_board_info", "A power board; always 1.", "model", "bus", "address")
	boardOK       = desc("power_board_ok", "1 when the board answers and works.", "model", "bus", "address")
	deviceState   = desc("display_device_state", "LCD and LED state: 1 for the current state.", "device", "state")
	ledPattern    = desc("led_pattern", "The pattern the status LED plays: 1 for the current one.", "pattern")
	dhcpState     = desc("dhcp_state", "DHCP server state: 1 for the current state.", "state")
	dhcpLeases    = desc("dhcp_leases", "Addresses leased (or offered) now.")
	dhcpPackets   = desc("dhcp_packets_total", "DHCP packets by kind: received, offers, acks, naks.", "kind")
	dnsState      = desc("dns_state", "DNS server state: 1 for the current state.", "state")
	dnsQueries    = desc("dns_queries_total", "DNS queries by outcome: local, cache, upstream, servfail, refused, rate-limited, malformed, not-implemented.", "outcome")
	dnsUpstreams  = desc("dns_upstreams", "Resolvers the DNS server forwards to now.")
	dnsCache      = desc("dns_cache_entries", "Upstream answers in the DNS cache.")
	dnsRecords    = desc("dns_local_names", "Local names the DNS server answers.")
	dnsUpErrors   = desc("dns_upstream_errors_total", "Forwarded queries an upstream did not answer (timeout, error, SERVFAIL, REFUSED).")
	dhcpDropped   = desc("dhcp_packets_dropped_total", "DHCP packets not answered, by reason (malformed, rate-limited, ...).", "reason")
	bridgePorts   = desc("bridge_ports", "Interfaces in the ClusterHAT bridge.", "bridge")
)

// Board and head node facts (power part).
var (
	ctrlVoltage  = desc("clusterctrl_voltage_volts", "A ClusterCTRL ADC's reading: a 5 V rail (type 1) or the input (type 2), by the official tool's conversion.", "order", "adc", "type")
	ctrlTemp     = desc("clusterctrl_temperature_celsius", "A ClusterCTRL's controller temperature, by the official tool's conversion (which it calls inaccurate).", "order")
	boardFan     = desc("power_board_fan_on", "1 when a ClusterCTRL's fan is asked for (fan on).", "model", "order")
	nodeCooling  = desc("node_cooling_requested", "1 when the node asks its ClusterCTRL Stack for cooling.", "node")
	nodeUSBBoot  = desc("node_usbboot", "1 when the node's USBBOOT line is on: it boots from USB at its next power-on.", "node")
	hatWP        = desc("clusterhat_eeprom_write_protected", "1 when the ClusterHAT's HAT EEPROM is write-protected.", "model")
	headThrottle = desc("head_throttling", "The head node's firmware flags (get_throttled): 1 when set, now or having occurred in the last seconds.", "flag", "when")
	headFan      = desc("head_fan_on", "1 when the head node's fan ([power] fan_gpio) is on.", "gpio")
)

var dnsStates = []string{api.DNSOff, api.DNSWaiting, api.DNSServing, api.DNSFailed}

// dnsOutcomes are every query outcome, so that zeros are exported too.
var dnsOutcomes = []string{"local", "cache", "upstream", "servfail", "refused", "rate-limited", "malformed", "not-implemented"}

var dhcpStates = []string{api.DHCPOff, api.DHCPWaiting, api.DHCPProbing, api.DHCPServing, api.DHCPOtherServer, api.DHCPFailed}

var nodeStates = []string{api.NodeOff, api.NodeBooting, api.NodeUp, api.NodeUnreachable, api.NodeUnknown}
var deviceStates = []string{api.DeviceDisabled, api.DeviceStarting, api.DeviceOK, api.DeviceMissing}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{buildInfo, healthState, failureClass, natState, natRules, natForwarding, natRepairs, linkUp, linkInfo, addrChanges, reloadOK, reloadTime, reloadsFailed, restartNeeded, notApplied, startTime, ready,
		nodeState, nodePowered, nodeUp, boardInfo, boardOK, deviceState, ledPattern,
		dhcpState, dhcpLeases, dhcpPackets, dhcpDropped, bridgePorts,
		dnsState, dnsQueries, dnsUpstreams, dnsCache, dnsRecords, dnsUpErrors,
		ctrlVoltage, ctrlTemp, boardFan, nodeCooling, nodeUSBBoot, hatWP, headThrottle, headFan} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.current()
	gauge(ch, buildInfo, 1, s.Version, runtime.Version())
	for _, st := range healthStates {
		gauge(ch, healthState, b2f(s.Health.State == st), st)
	}
	gauge(ch, failureClass, float64(s.Health.Class))
	gauge(ch, ready, b2f(s.Ready))
	gauge(ch, startTime, float64(s.Started.UnixNano())/1e9)
	for _, st := range natStates {
		gauge(ch, natState, b2f(s.NAT.State == st), st)
	}
	gauge(ch, natRules, b2f(s.NAT.RulesPresent))
	gauge(ch, natForwarding, b2f(s.NAT.Forwarding))
	counter(ch, natRepairs, float64(s.NAT.Repairs))
	for _, l := range []struct {
		role string
		link api.Link
	}{{"uplink", s.Uplink}, {"cluster", s.Cluster}} {
		gauge(ch, linkUp, b2f(l.link.Exists && l.link.Carrier), l.role, l.link.Interface)
		if l.link.Address != "" {
			gauge(ch, linkInfo, 1, l.role, l.link.Interface, l.link.Address)
		}
		counter(ch, addrChanges, float64(l.link.Changes), l.role, l.link.Interface)
	}
	for _, n := range s.Power.Nodes {
		for _, st := range nodeStates {
			gauge(ch, nodeState, b2f(n.State == st), n.Name, st)
		}
		if n.Powered != nil {
			gauge(ch, nodePowered, b2f(*n.Powered), n.Name)
		}
		gauge(ch, nodeUp, b2f(n.Reachable), n.Name)
	}
	for _, b := range s.Power.Boards {
		bus := strconv.Itoa(b.Bus)
		gauge(ch, boardInfo, 1, b.Model, bus, b.Address)
		gauge(ch, boardOK, b2f(b.State == "ok"), b.Model, bus, b.Address)
	}
	for _, dev := range []struct{ name, state string }{{"lcd", s.Display.LCD.State}, {"led", s.Display.LED.State}} {
		for _, st := range deviceStates {
			gauge(ch, deviceState, b2f(dev.state == st), dev.name, st)
		}
	}
	if p := s.Display.LED.Pattern; p != "" {
		gauge(ch, ledPattern, 1, p)
	}
	c.collectDHCP(ch, s)
	collectDNS(ch, s.DNS)
	collectBoardFacts(ch, s.Power)
	gauge(ch, reloadOK, b2f(s.Config.ReloadOK))
	gauge(ch, reloadTime, float64(s.Config.LoadedAt.UnixNano())/1e9)
	counter(ch, reloadsFailed, float64(s.Config.ReloadsFailed))
	gauge(ch, restartNeeded, float64(len(s.Config.RestartNeeded)))
	gauge(ch, notApplied, float64(len(s.Config.NotApplied)))
}

func (c *collector) collectDHCP(ch chan<- prometheus.Metric, s *api.Status) {
	dh := s.DHCP
	for _, st := range dhcpStates {
		gauge(ch, dhcpState, b2f(dh.State == st), st)
	}
	gauge(ch, dhcpLeases, float64(len(dh.Leases)))
	for _, k := range []struct {
		kind string
		n    int64
	}{{"received", dh.Packets.Received}, {"offers", dh.Packets.Offers}, {"acks", dh.Packets.Acks}, {"naks", dh.Packets.Naks}} {
		counter(ch, dhcpPackets, float64(k.n), k.kind)
	}
	reasons := make([]string, 0, len(dh.Packets.Dropped))
	for r := range dh.Packets.Dropped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		counter(ch, dhcpDropped, float64(dh.Packets.Dropped[r]), r)
	}
	if b := s.Bridge; b != nil && b.Exists {
		gauge(ch, bridgePorts, float64(len(b.Ports)), b.Name)
	}
}

func collectDNS(ch chan<- prometheus.Metric, d api.DNS) {
	for _, st := range dnsStates {
		gauge(ch, dnsState, b2f(d.State == st), st)
	}
	for _, o := range dnsOutcomes {
		counter(ch, dnsQueries, float64(d.Queries[o]), o)
	}
	gauge(ch, dnsUpstreams, float64(len(d.Upstreams)))
	gauge(ch, dnsCache, float64(d.Cache.Entries))
	gauge(ch, dnsRecords, float64(d.Records))
	counter(ch, dnsUpErrors, float64(d.UpstreamErrors))
}

// collectBoardFacts exports what the boards and the head node say about
// themselves, in base units.
func collectBoardFacts(ch chan<- prometheus.Metric, p api.Power) {
	for _, b := range p.Boards {
		order := strconv.Itoa(b.Order)
		for _, v := range b.Voltages {
			gauge(ch, ctrlVoltage, v.Volts, order, strconv.Itoa(v.ADC), strconv.Itoa(v.Type))
		}
		if t := b.Temperature; t != nil {
			gauge(ch, ctrlTemp, t.Celsius, order)
		}
		if b.Fan != nil {
			gauge(ch, boardFan, b2f(*b.Fan), b.Model, order)
		}
		for k := range b.Count {
			if b.FanStatus != nil && k < 7 {
				gauge(ch, nodeCooling, b2f(*b.FanStatus>>(k+1)&1 == 1), "p"+strconv.Itoa(b.First+k))
			}
		}
		if b.WP != nil {
			gauge(ch, hatWP, b2f(*b.WP), b.Model)
		}
	}
	for _, n := range p.Nodes {
		if n.USBBoot != nil {
			gauge(ch, nodeUSBBoot, b2f(*n.USBBoot), n.Name)
		}
	}
	h := p.Head
	if h.ThrottledSource != "" {
		for _, f := range []struct {
			flag, when string
			on         bool
		}{{"under_voltage", "now", h.UnderVoltage}, {"under_voltage", "occurred", h.UnderVoltageOccurred},
			{"frequency_capped", "now", h.FrequencyCapped}, {"throttled", "now", h.Throttling}, {"soft_temp_limit", "now", h.SoftTempLimit}} {
			if h.ThrottledSource == "hwmon" && f.when == "now" {
				continue // the hwmon alarm is the sticky under-voltage bit alone
			}
			gauge(ch, headThrottle, b2f(f.on), f.flag, f.when)
		}
	}
	if h.Fan != nil {
		gauge(ch, headFan, b2f(*h.Fan), strconv.Itoa(h.FanGPIO))
	}
}
