// Package lcdrom holds the character generator ROMs of HD44780-compatible
// LCD controllers: which glyph the controller draws for each character
// code. The HD44780U is made with ROM code A00 (Japanese: half-width
// katakana, ¥ where ASCII has a backslash, arrows for ~ and DEL; what most
// cheap modules carry) or A02 (European: full ASCII, Cyrillic, Greek and
// Latin-1-like letters). The ROM cannot be read back from the chip, so it
// is a setting; showing code 0x5C tells them apart (¥ on A00, \ on A02).
//
// The driver uses these tables to transcode text; the emulated controller
// uses them to render its DDRAM as the glyphs a person would read.
//
// Source: Hitachi HD44780U (LCD-II) datasheet, ADE-207-272(Z), '99.9
// Rev. 0.0: Table 4 "Correspondence between Character Codes and Character
// Patterns", ROM code A00 (page 17) and ROM code A02 (page 18); codes
// 0x00-0x0F select the eight CGRAM patterns, each twice (Table 5).
//
// Each glyph is the one Unicode character a reader would name for the
// pattern. Where there is none the choice is written down:
//   - A00 0xE7, 0xEA, 0xF0, 0xF1, 0xF9 are g, j, p, q, y with true
//     descenders and read as those letters (text still encodes to the
//     ASCII codes); 0xE9 (superscript -1) and 0xF8 (x-bar) have no single
//     character and render blank; 0xEB is a small raised x (ˣ); 0xED, an
//     L with two bars, reads as £; 0xDF, the semi-voiced mark, is also the
//     usual degree sign.
//   - A02 0xB0 is a raised ring (°) and 0xD8 a capital phi (Φ), not the
//     slashed O of Latin-1; 0xAF is an opening single quote; 0xB4 a "Pt"
//     ligature (₧).
//
// testdata/hd44780u-a00.txt and hd44780u-a02.txt are a separate
// transcription of Table 4, with these notes per code; the tests compare
// all 256 codes of both ROMs against it.
package lcdrom
