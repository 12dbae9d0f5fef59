// Package lcd drives an HD44780-compatible character LCD behind an I2C
// backpack: a PCF8574/PCF8574A port expander (0x27 / 0x3F on most boards)
// or an MCP23008 (the Adafruit #292 backpack), on periph.io's i2c.Bus.
//
// periph's own hd44780 driver is GPIO-only in the released devices module
// and never sends Function Set 0x28 (periph.io/x/devices/v3 v3.7.4,
// hd44780/hd44780.go: its init list sends 0x14 and 0x10, cursor shifts,
// where its comments say function set and display off), so this package
// talks to the expander directly:
//
//   - Each screen row is one I2C write: the Set DDRAM Address command and
//     every character of the row as port states. Within one write the
//     expander applies a new state every 9 SCL periods (90 µs at 100 kHz),
//     so the bus itself provides the controller's 37-41 µs execution
//     times and no sub-millisecond sleep is needed. RS changes in its own
//     state before E rises (tAS), and data is held while E falls.
//   - Text is transcoded rune by rune into the module's character ROM
//     (A00 or A02); anything the ROM cannot draw becomes '?'.
//   - A shadow of the screen means only changed rows are written. Refresh
//     re-runs the datasheet's 4-bit initialisation (which brings the
//     controller back into nibble sync from any state) and redraws every
//     row; callers do that periodically and after any I2C error, since
//     noise on E corrupts a 4-bit stream without any error being seen.
//   - Rows are addressed at {0x00, 0x40, cols, 0x40+cols}, which is right
//     for 16x4 (0x10/0x50) as well as 20x4 (0x14/0x54).
//
// New finds the backpack (probing 0x27 then 0x3F), tells a PCF8574 from an
// MCP23008, and on a PCF8574 works out which of the common pin maps the
// board uses.
//
// Sources:
//   - Hitachi HD44780U (LCD-II) datasheet, ADE-207-272(Z), '99.9 Rev. 0.0:
//     Table 6 (instruction codes; 37 µs, and 1.52 ms for Clear, at 270
//     kHz), Figure 24 "4-Bit Interface" under "Initializing by
//     Instruction" (page 46: wait > 40 ms, then 0x3, > 4.1 ms, 0x3, > 100
//     µs, 0x3, 0x2, function set, display off, clear, entry mode set),
//     Figures 4 and 5 (line 2 starts at DDRAM 0x40), Figure 25 and the bus
//     timing table (RS set up before E rises, data held after it falls),
//     Table 4 (the ROMs, in hw/lcdrom).
//   - TI PCF8574 datasheet SCPS068K: address 0100 A2 A1 A0, 0x20-0x27
//     (7.3.2); the port is high at power-on; 100 kHz at most (5.6); each
//     data byte of one write reaches the port at its acknowledge (Figure
//     7-3). The PCF8574A answers at 0x38-0x3F (address 0111 A2 A1 A0); its
//     datasheet was not re-read.
//   - Microchip MCP23008 (DS21919), not re-read for this: IODIR 0x00
//     (0xFF at reset), IOCON 0x05 with SEQOP (0x20) so the register
//     pointer stays on GPIO (0x09) for a whole write.
//   - Pin maps and the PCF8574-or-MCP23008 test: duinoWitchery/hd44780
//     hd44780ioClass/hd44780_I2Cexp.h at
//     27fd9d3809a92e744eef60b13dfcf4096c91cbe8 (I2Cexp_BOARD_YWROBOT and
//     friends for Standard, LCM1602 for StandardBLLow, MJKDZ/GYI2CLCD,
//     LCDXIOnBL, ADAFRUIT292); lcdproc/lcdproc server/drivers/
//     hd44780-i2c.c at 61c68f4ebdec41754b2df7415cd6f57609ccf31c, whose
//     default map is LCDXIO.
//
// Uncertain: the TI text (7.3.1) says the PCF8574 ignores data bytes
// after the first of a write, while its Figure 7-3, and duinoWitchery's
// chip test (which counts on both bytes of [0x00, 0xFF] reaching the
// port), have every byte reach the port; the row-per-write design relies
// on the latter. The 4-row offsets are the usual module wiring, not in the
// controller datasheet.
package lcd
