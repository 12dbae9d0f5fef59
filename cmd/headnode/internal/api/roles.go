package api

// Roles says which interface has which role and why (netcfg/roles).
type Roles struct {
	Uplink  Role `json:"uplink"`
	Cluster Role `json:"cluster"`
	// Problem is set when the configured cluster side is a LAN and is
	// left alone: what is wrong and the fix, in one line.
	Problem string `json:"problem,omitempty"`
	// LeftAlone are the interfaces never claimed for the cluster, each
	// with the reason ("eth0 carries the default route").
	LeftAlone []string `json:"left_alone,omitempty"`
}

// Role is one side.
type Role struct {
	// Interface is "" while none is known.
	Interface string `json:"interface"`
	Why       string `json:"why"`
	// Auto: chosen by headnode ("auto" in the configuration).
	Auto bool `json:"auto"`
	// Claimed (cluster side): checked, and our address, NAT and DHCP are
	// on it.
	Claimed bool `json:"claimed,omitempty"`
}
