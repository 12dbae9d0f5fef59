// Package gpiopin emulates Raspberry Pi GPIO lines as the BCM283x has them:
// after the SoC resets every line is an input with its default pull, an
// output drives its level, and a read returns the pin's level whatever the
// direction. It has the same methods as hw/gpio.Line.
//
// Source: Broadcom BCM2835 ARM Peripherals (06 February 2012): section
// 6.1, the function select registers (every line an input at reset) and
// GPLEV (the level register reads the pin, whatever its function);
// section 6.2, Table 6-31 (page 102), the pull each line has at reset:
// GPIO0-8 high, GPIO9-27 low (ResetPull). Of the ClusterHAT v1 lines
// that makes BCM 5 (ALERT) and 6 (P1) pulled high and 13, 19, 26 (P2-P4)
// low. Whether the HAT holds its inputs low by its own resistors was not
// found in any source, nor whether the Pi 5's RP1 has the same pulls (the
// emulation gives every machine the BCM2835's).
package gpiopin
