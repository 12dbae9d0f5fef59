// Package expander emulates the 8-bit I2C I/O expanders on ClusterHAT v2.x
// and v3.x boards: the Exar/MaxLinear XRA1200P and the TI PCA9554.
//
// The model is a register file with pins behind it: the input register
// reads pin levels (inverted per the polarity register), outputs drive
// pins from the output latch, and pins configured as inputs read what the
// board drives onto them (a solder link, a jumper) or, when nothing does,
// the internal pull-up. Reset puts every register back to its power-on
// default, as a controller reboot that drops the expander's supply does.
//
// Each transaction is an SMBus byte-data access: the first byte written
// selects a register, further bytes written go to that register, and bytes
// read come from it.
//
// Sources:
//   - Register map and reset values (input 0x00; output 0x01 = 0xFF;
//     polarity 0x02 = 0x00; configuration 0x03 = 0xFF, 1 = input; pull-up
//     0x04 = 0xFF on the XRA1200P, 0x00 on the XRA1200; interrupt enable
//     0x05, three-state 0x06, interrupt status 0x07, rising and falling
//     edge 0x08 and 0x09 = 0x00; input filter 0x0A = 0xFF):
//     8086net/CircuitPython_XRA1200 XRA1200.py at
//     99ea3c01e817dd322c553d1b57a1ba1d5c59b587.
//   - The PCA9554 has registers 0x00-0x03 only and does not acknowledge
//     0x04: the official tool tells the chips apart by that failing read
//     (burtyb/clusterhat-image files/usr/share/clusterctrl/python/
//     xra1200.py get_pur, and files/usr/sbin/clusterctrl, at
//     dd66f59ffe9e6e981288c9a49b0affbb7ca0c751).
//
// Assumed from the part descriptions, not re-read in the MaxLinear
// XRA1200/XRA1200P or TI PCA9554 (SCPS124) datasheets: the PCA9554's
// pull-ups are fixed (an undriven input reads 1); neither chip advances
// the register pointer after a byte; a write to the input or interrupt
// status register is acknowledged and ignored.
package expander
