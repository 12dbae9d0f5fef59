// Package clusterctrl drives the 8086 Consultancy ClusterCTRL boards
// (Single, pHAT, Triple, A+6, Stack): an AVR behind USB that the
// i2c-tiny-usb kernel driver turns into an I2C bus (/dev/ClusterCTRL-N)
// with one emulated slave at 0x20.
//
// Sources: the firmware, burtyb/ClusterCTRL at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b (src/main.c, firmware 1.8,
// register layout 0x02; the boards' config.h), and the official tool,
// burtyb/clusterhat-image files/usr/sbin/clusterctrl at
// dd66f59ffe9e6e981288c9a49b0affbb7ca0c751.
//
//   - Registers (struct i2creg): VERSION 0x00 (the layout, 0x02), MAXPI
//     0x01, ORDER 0x02, MODE 0x03 (unused by the firmware), TYPE 0x04,
//     DATA7..DATA0 at 0x05..0x0C, CMD 0x0D, STATUS 0x0E. The register
//     pointer advances after every byte, so DATA7..DATA0 are one 8-byte
//     read.
//   - A command runs when its code is written to CMD; the firmware sets CMD
//     back to 0 when done and leaves the result in STATUS (0 OK, 1 failed,
//     2 no such node, 3 unknown command) and the DATA registers. While CMD
//     is non-zero it NAKs every message that is not a read
//     (i2c_do_emulated, main.c lines 466-483), the register select before
//     a read included, so the driver's poll of CMD is NAKed while the
//     command runs: such a NAK is "still busy", and the poll goes on until
//     CMD reads 0 or Opts.Timeout passes. Since the main loop runs a
//     command before it handles the next USB request (usbPoll, lines
//     1454-1458), a host should rarely meet that window (read from the
//     source, not observed).
//   - TYPE 0x03 is both the A+6 and the Single (their config.h); MAXPI (5
//     or 1) tells them apart.
//   - LED_EN with DATA0 = 0 on the GPIOD boards (pHAT, Single) also drives
//     every node's power enable high (lines 1619-1638); this driver
//     enables LEDs node by node instead. But LED_EN for one node is kept
//     on those boards only while the node is powered (lines 1652-1664),
//     and ON lights the LED only if it was kept (lines 1475-1492): after
//     LEDs off, then on with a node off, that node would come up dark. So
//     when LEDs were last asked on (SetLEDs, or RememberLEDs after a
//     restart), SetPower enables the node's LED once it has power.
//   - HUB_ON and HUB_OFF are defined but not implemented (STATUS 3);
//     HUB_CYCLE holds the hub off for DATA0 x 10 ms and leaves STATUS as it
//     was (lines 1769-1789).
//   - FAN, ACT_EN/ACT_DIS and USBBOOT_EN/USBBOOT_DIS exist only where the
//     board has the pins (STATUS 3 elsewhere); GET_USTATUS answers 0xFF
//     where there is no USBBOOT line; GETPATH answers DATA7 first (paths[n]
//     [0], lines 2014-2036) and fails on the Stack (NOPATHS).
//   - GET_DATA (lines 1907-1994): 0 the firmware version (DATA1 major,
//     DATA0 minor), 1 the number of voltage ADCs, 2 ADC n's type and
//     reading, 3 the temperature sensor's (where ADCTEMP is defined), 4
//     the fan status (bit 0 asked for, bits 1-7 the nodes' cooling
//     requests on a Stack). Millivolts and Celsius convert as the official
//     tool does (lines 813-823).
//   - RESET restarts the MCU through its watchdog (lines 768-773); the
//     board then applies its EEPROM power-on state and re-enumerates on
//     USB. The driver does not wait for RESET to finish: it never does.
//
// Unlike the official tool, which writes DATA0 and CMD and reads the
// result at once, this driver checks the register layout version, waits
// for each command to finish (polling CMD until it reads 0), checks
// STATUS, and retries messages the firmware NAKs while it is busy.
//
// A controller reboot is told from a daemon restart by a marker written
// to MODE: reg is a global without an initialiser in main.c, so it is in
// .bss, which avr-libc's start-up code zeroes on every reset (power-on,
// the RESET command's watchdog reset, the 8 s watchdog), and nothing but
// a host write sets MODE. This follows from the source; it was not tried
// on a board.
//
// Not checked on a board: whether the bus number of the i2c-tiny-usb
// adapter stays the same when a board re-enumerates after RESET (the
// daemon keeps the bus it found at start).
package clusterctrl
