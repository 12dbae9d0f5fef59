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
// Protocol, as the firmware implements it:
//   - Registers 0x00-0x0E; the register pointer advances after every byte
//     read or written; undefined registers read 0xFF.
//   - A command runs when its code is written to CMD (0x0D). While it is
//     pending, CMD reads back non-zero and the firmware NAKs every write
//     message (i2c_do_emulated exempts reads only). When it is done, CMD
//     reads 0x00 and STATUS (0x0E) holds the result.
//   - SAVEDEFAULTS writes order 20, PWR and ACT LED on, every node LED
//     enabled, power-on state all off and USBBOOT enabled. At reset the
//     firmware turns ALERT off, enables the hub and switches on, in order,
//     each node whose power-on-state bit is set (waiting AUTOONDELAY, 1 s
//     on the pHAT, A+6 and Stack, before each; the emulation applies the
//     result at once). RAM, MODE included, starts zeroed.
//
// Where the emulation differs: the firmware's main loop handles one USB
// request (usbPoll) and then runs a pending command to its end, so a host
// normally finds CMD back at 0 by its next transfer (read from the
// source, not observed on a board). The emulation instead keeps a command
// pending for Opts.Busy bus transactions, so that the driver's polling
// and retries are exercised deterministically and without a clock; and
// while a command is pending it lets through the register-pointer write
// that starts a read, which the firmware would NAK (the emulated bus
// carries write and read as one transaction, i2c-tiny-usb as two
// messages).
//
// What a user would see on the board (node power, the ALERT and PWR LEDs,
// hub power) is exposed by methods for tests.
package clusterctrl
