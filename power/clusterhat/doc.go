// Package clusterhat drives the 8086 Consultancy ClusterHAT, which powers
// up to four Pi Zero nodes from the head node's 40-pin header.
//
//   - v1.x: five GPIO lines, active high: BCM 5 ALERT, 6/13/19/26 P1-P4.
//   - v2.x and v3.x: an Exar XRA1200P (or TI PCA9554) 8-bit I2C I/O
//     expander at 0x20 (0x20-0x23 with the XA0/XA1 jumpers): bits 0-3 P1-P4,
//     4 LED enable (v2 only), 5 USB hub (v2.0: 1 = on; later: 0 = on),
//     6 ALERT, 7 EEPROM write-protect.
//
// Datasheets: MaxLinear XRA1200/XRA1200P 8-bit I2C GPIO expander with
// input interrupt, rev 1.0.3; TI PCA9554/PCA9554A SCPS124. The
// initialisation follows burtyb/clusterhat-image's clusterctrl at dd66f59
// (see /work/shared/docs/hardware-clusterhat.md §2-§3).
//
// Power state is always read back from pin levels: the expander's input
// register, or the GPIO level register.
package clusterhat
