package api

// DHCP reports the cluster's DHCP server and leases. Scaffolding: the dhcp
// part defines its fields.
type DHCP struct{}
