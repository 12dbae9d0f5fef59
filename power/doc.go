// Package power controls the power of cluster nodes: one driver per board
// kind (ClusterHAT v1 over GPIO, v2/v3 over an I2C expander, ClusterCTRL
// boards) behind one interface, staggered sequencing, the persisted boot
// policy, and each node's lifecycle (off, booting, up, unreachable).
package power
