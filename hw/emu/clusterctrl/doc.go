// Package clusterctrl emulates the firmware of the 8086 Consultancy
// ClusterCTRL boards (Single, pHAT, Triple, A+6, Stack): an AVR running
// i2c-tiny-usb whose emulated I2C slave at 0x20 exposes a small register
// file and executes commands.
//
// Source: burtyb/ClusterCTRL at f3d792468b43cec28f4d168caa41bff10d9f2c2b:
// src/main.c (firmware 1.8, register layout 0x02: struct i2creg, the
// I2C_CMD_* and GET_DATA_* codes, usbFunctionRead/usbFunctionWrite,
// i2c_do_emulated, the command loop in main) and
// cluster{single,phat,triple,aplus6,stack}-1.0/config.h and usbconfighw.h
// for each board's CTRL_TYPE, CTRL_MAXPI, USB product ID, GPIOD/GPIOA,
// fan, USBBOOT, ADC and GETPATH tables. The DA (a HAT multiplexer, not a
// node power board) is not emulated.
//
// Protocol, as the firmware implements it (line numbers of src/main.c):
//   - Registers 0x00-0x0E; the register pointer advances after every byte
//     read or written; undefined registers read 0xFF (usbFunctionRead and
//     usbFunctionWrite, lines 605-766). A message with data starts at the
//     register its first byte selects; a bare read reads on from the
//     pointer.
//   - A command runs when its code is written to CMD (0x0D). While it is
//     pending, CMD reads back non-zero and the firmware NAKs every message
//     that is not a read (i2c_do_emulated, lines 466-483), the register
//     select that starts a register read included. When it is done, CMD
//     reads 0x00 and STATUS (0x0E) holds the result of the commands that
//     set one (HUB_CYCLE does not, lines 1769-1789).
//   - Each command as the event loop runs it (lines 1458-2045), with the
//     board's config.h deciding what is compiled in: LED enables on the
//     GPIOD boards kept only for powered nodes (lines 1652-1664) and LED_EN
//     for all of them powering them on (lines 1619-1638); GET_PSTATUS from
//     the stored state there and from the pins elsewhere (lines 1825-
//     1860); FAN, ACT and USBBOOT only where defined; GETPATH from the
//     board's config.c, DATA7 first; GET_DATA falling back to STATUS 0x01
//     (lines 1907-1994); INIT, RESCAN and PING reaching "unknown command".
//   - SAVEDEFAULTS writes order 20, PWR and ACT LED on, every node LED
//     enabled, power-on state all off and USBBOOT enabled. At reset the
//     firmware turns ALERT off, enables the hub and switches on, in order,
//     each node whose power-on-state bit is set (waiting AUTOONDELAY, 1 s
//     on the pHAT, A+6 and Stack, before each; the emulation applies the
//     result at once). RAM, MODE included, starts zeroed.
//
// Where the emulation differs: the firmware's main loop handles one USB
// request (usbPoll) and then runs a pending command to its end, so a host
// normally finds CMD back at 0 by its next transfer (read from the source,
// not observed on a board). The emulation instead keeps a command pending
// for Opts.Busy bus transactions, so that the driver's polling and retries
// are exercised deterministically and without a clock. A Tx is one
// i2c-tiny-usb transfer of up to two messages (w, then r), NAKed as a
// whole when its write message is.
//
// What a user would see on the board (node power, node LEDs, the ALERT
// and PWR LEDs, the fan, the USBBOOT lines, hub power) is exposed by
// methods for tests.
package clusterctrl
