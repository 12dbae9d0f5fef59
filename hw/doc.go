// Package hw is the root of headnode's hardware access. Its subpackages
// open buses and devices (I2C and GPIO through periph.io, hidraw, the HAT
// EEPROM in the device tree, ClusterCTRL device nodes), trace what crosses
// them, and emulate each chip protocol-accurately for tests and for
// `headnode sim`. Package machine is the one place that chooses between
// the real hardware and an emulated machine; the rest of headnode takes
// its hardware from there. Package wake puts the daemon's periodic timers
// on one shared beat, so that an idle head wakes once a second rather
// than once per timer. Nothing under hw knows what a node, an IP address
// or a health state is.
package hw
