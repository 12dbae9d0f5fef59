// Package clusterhat drives the 8086 Consultancy ClusterHAT, which powers
// up to four Pi Zero nodes from the head node's 40-pin header.
//
//   - v1.x: five GPIO lines, active high: BCM 5 ALERT, 6/13/19/26 P1-P4.
//   - v2.x and v3.x: an Exar XRA1200P (or TI PCA9554) 8-bit I2C I/O
//     expander at 0x20 on bus 1: bits 0-3 P1-P4, 4 LED enable (v2 only),
//     5 USB hub, 6 ALERT, 7 EEPROM write-protect.
//
// Power state is always read back from pin levels (the expander's input
// register, or the GPIO level), never from the output latch.
//
// The behaviour follows the official tool, burtyb/clusterhat-image
// files/usr/sbin/clusterctrl at dd66f59ffe9e6e981288c9a49b0affbb7ca0c751
// with files/usr/share/clusterctrl/python/xra1200.py:
//   - version: /proc/device-tree/hat/product_ver, 0x1m = v1.m, 0x2m =
//     v2.m, 0x3m = v3.m (see hw/detect);
//   - v1: the BCM lines [5, 6, 13, 19, 26] are ALERT and P1-P4, made
//     outputs, 1 = on;
//   - v2/v3: every access is one SMBus byte-data transfer; on and off
//     read the output register (0x01), change one bit and write it back;
//     state is read from the input register (0x00);
//   - first use after power-up is recognised by the configuration
//     register (0x03) reading 0xFF (every pin an input). Then, in order:
//     with the pull-up register (0x04) at 0x7F, input bit 7 reading 1
//     means the write-protect link is soldered (pull-ups back to 0xFF),
//     else write-protect is set; P1-P4 on if input bits 0-3 all read 1
//     (power-on-state link cut), else off; ALERT off; LED on (v2 only);
//     hub on; and only then configuration 0x00, so the latch is ready
//     before the pins drive. The PCA9554 is told from the XRA1200P by a
//     failing read of register 0x04; it has no pull-up register, so the
//     link test is skipped and write-protect set.
//
// Registers and reset values (output 0xFF, configuration 0xFF, pull-ups
// 0xFF on the XRA1200P): 8086net/CircuitPython_XRA1200 XRA1200.py at
// 99ea3c01e817dd322c553d1b57a1ba1d5c59b587, by the ClusterHAT's designer.
// The MaxLinear XRA1200/XRA1200P and TI PCA9554 (SCPS124) datasheets name
// the same registers; they were not re-read for this.
//
// Hub polarity is where the sources disagree. v2.0 switches the hub on
// with a 1; from v2.1 a 1 holds the hub in reset. The tool's first-run
// block (lines 503-506) tests "version 2 and minor 0", so a v3.x is active
// low, but its hub on/off and status code (lines 785-788, 843-852) tests
// only "minor 0", which would treat a v3.0 as active high; the ClusterCTRL
// DA firmware (burtyb/ClusterCTRL src/main.c at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b, chdta_scan, lines 1149-1156)
// inverts only for major 2, minor > 0, and knows no v3. Opts.HubPolarity
// ([power] hub_polarity) HubAuto uses the first-run rule everywhere
// (active high on v2.0 only); HubHigh and HubLow force either. No v3.0
// board was available to settle it; v3.1 (the tool special-cases it for
// getpath) agrees with every source as active low.
//
// Reads are not trusted singly. A bit-banged bus can return a byte with a
// bit flipped, or all ones, and ACK it; node power is decided from these
// reads, so every register the decisions rest on is read until it gives
// the same value three times in a row (stableRead), a read that looks
// like a reset (configuration 0xFF) must do so three times in a row before
// the board is initialised again (looksReset), and every read-modify-
// write of the output latch is read back and done again if the latch does
// not hold what was written (setBits). The official tool does none of
// this: one corrupted read there re-initialises the board from its
// power-on-state jumper, or writes another node's flipped bit back.
//
// Write protection (bit 7) is switched on v2.x only and not turned off
// while the WP solder link is bridged (lines 954-963), as the tool does.
// Opts.Size counts fewer than four nodes (CLUSTERHAT_SIZE, lines
// 436-437).
//
// Assumed, not from a source: the XA0/XA1 jumpers move the expander to
// 0x20-0x23 (the tool hard-codes 0x20); a lone failed transaction is
// retried, since bus 1 is bit-banged i2c-gpio on the official images for
// Pi 0-4 (build/create.sh) and every access is a whole register read or
// write.
package clusterhat
