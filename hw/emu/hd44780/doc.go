// Package hd44780 emulates an HD44780U character LCD behind an I2C
// backpack (a PCF8574/PCF8574A quasi-bidirectional port or an MCP23008
// register-based expander), for tests and `headnode sim`.
//
// The emulation works at the pin level, as the real parts do: every byte
// the master writes to a PCF8574 becomes a port state; the controller
// latches RS, RW and data on E's edges, assembles bytes from nibbles in
// 4-bit mode (and so loses nibble sync exactly when the chip would), runs
// the instruction set with its execution times (bytes that arrive while it
// is busy are ignored), and keeps DDRAM and CGRAM. Screen renders the panel
// as text through the character ROM (hw/lcdrom), so tests assert what a
// person would read. Reads model the port too: a pin the LCD drives during
// a read cycle reads back what the LCD drives, and an active-high
// backlight transistor loads its pin so it reads low, which is what
// pin-map detection relies on.
//
// Timing is modelled from a clock (Opts.Now) and the bus rate: each byte of
// a transaction takes 9 SCL periods, so the gap between port states inside
// one write is real bus time, and sleeping too little after Clear shows up
// as dropped bytes.
//
// Sources:
//   - Hitachi HD44780U (LCD-II) datasheet, ADE-207-272(Z), '99.9 Rev. 0.0:
//     "Initializing by Internal Reset Circuit" (page 23: 8-bit interface,
//     one line, display off, increment, busy after power-up), Table 6
//     (instructions; 37 µs, 1.52 ms for Clear and Return home, at 270 kHz)
//     and Figure 10 (tADD, 4 µs more after a data write), Figures 4 and 5
//     (two-line DDRAM at 0x00-0x27 and 0x40-0x67), Figure 25 and the bus
//     timing table (RS and R/W set up before E rises and held after it
//     falls, data held after the fall), note 5 of the electrical
//     characteristics (DB0-DB7 have pull-up MOS, so unwired DB0-DB3 read
//     1 in 8-bit mode), Table 4 for the ROMs.
//   - TI PCF8574 datasheet SCPS068K: the port is high (a weak current
//     source) at power-on; a pin written 1 can be pulled low from outside
//     and read; each data byte of a write reaches the port at its
//     acknowledge (Figure 7-3); 100 kHz at most (5.6).
//   - Microchip MCP23008 (DS21919), not re-read for this: IODIR 0x00
//     (0xFF at reset), IOCON 0x05 with SEQOP 0x20, GPIO 0x09, OLAT 0x0A.
//   - Backpack wirings: duinoWitchery/hd44780 hd44780ioClass/
//     hd44780_I2Cexp.h at 27fd9d3809a92e744eef60b13dfcf4096c91cbe8 (the
//     I2Cexp_BOARD_* table and its notes on backlight transistors) and
//     lcdproc/lcdproc server/drivers/hd44780-i2c.c at
//     61c68f4ebdec41754b2df7415cd6f57609ccf31c (its default is the LCDXIO
//     map).
//
// Assumed: the controller is busy for 15 ms after power-up (the datasheet
// gives 10 ms after VCC reaches 4.5 V for the internal reset and asks the
// host to wait more than 15 ms; the emulation takes the longer); rows 3
// and 4 of a 4-row panel continue DDRAM lines 1 and 2 after cols
// characters, the usual module wiring, which the controller datasheet does
// not describe.
package hd44780
