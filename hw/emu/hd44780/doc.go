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
// as text through the character ROM, so tests assert what a person would
// read. Reads model the port too: a pin the LCD drives during a read cycle
// reads back what the LCD drives, and an active-high backlight transistor
// loads its pin so it reads low, which is what pin-map detection relies on.
//
// Datasheets: Hitachi HD44780U (ADE-207-272); NXP PCF8574/PCF8574A (Rev. 5);
// Microchip MCP23008 (DS21919).
//
// Timing is modelled from a clock (Opts.Now) and the bus rate: each byte of
// a transaction takes 9 SCL periods, so the gap between port states inside
// one write is real bus time, and sleeping too little after Clear shows up
// as dropped bytes.
package hd44780
