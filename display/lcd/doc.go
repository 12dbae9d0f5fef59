// Package lcd drives an HD44780-compatible character LCD behind an I2C
// backpack: a PCF8574/PCF8574A port expander (0x27 / 0x3F on most boards)
// or an MCP23008 (the Adafruit #292 backpack), on periph.io's i2c.Bus.
//
// periph's own hd44780 driver is GPIO-only in the released devices module
// (and never sends Function Set 0x28), so this package talks to the
// expander directly:
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
// Datasheets: Hitachi HD44780U (ADE-207-272), Fig. 24 "4-Bit Interface"
// initialisation and Table 6 instructions; NXP PCF8574/PCF8574A (Rev. 5);
// Microchip MCP23008 (DS21919). Pin maps: lcd-and-led.md §2.2.
package lcd
