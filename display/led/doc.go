// Package led drives USB RGB status lights and plays blink patterns on
// them.
//
// Drivers: the BlinkStick family (Agile Innovative; original, Pro,
// Square, Strip, Nano, Flex, told apart by the serial's major version and
// the USB bcdDevice) and the ThingM blink(1). Both speak HID feature
// reports, which reach them through hw/hidraw on Linux; the drivers take
// the narrow FeatureDevice interface so tests can hand them an emulated
// stick. BlinkStick reports 1 (LED 0) and 5 (one LED) are RGB; the frame
// reports 6-9 (8/16/32/64 LEDs) are GRB.
//
// A Player shows one Pattern per LED on a clock (injectable, so tests run
// on a fake one) and writes to the device only when what the LEDs should
// show changes: on a pattern's edges, never in between.
//
// Sources:
//   - BlinkStick: arvydas/blinkstick-python blinkstick/blinkstick.py at
//     8140b9fa18a9ff4f0e9df8e70c073f41cb8f1d35: VID 0x20A0, PID 0x41E5;
//     get_variant (the serial "BSnnnnnn-M.m": M = 1 original, 2 Pro, 3
//     with bcdDevice 0x0200 Square, 0x0201 Strip, 0x0202 Nano, 0x0203
//     Flex); set_color (report 1 [1, R, G, B] for LED 0, report 5 [5,
//     channel, index, R, G, B] otherwise); set_led_data and
//     _determine_report_id (reports 6, 7, 8, 9 for 8, 16, 32, 64 LEDs:
//     [id, channel, G, R, B, ...]); set_mode and get_mode (report 4, mode
//     2 drives WS2812 LEDs); set_led_count and get_led_count (report
//     0x81); bin/blinkstick accepts Flex counts 1-32.
//     arvydas/blinkstick-firmware main.cpp at
//     309778042415e9b616ce08b1f05aa89749780c51: the original BlinkStick
//     has reports 1-3 only (colour, two 32-byte info blocks) and bcdDevice
//     0x0200.
//   - blink(1): todbot/blink1 at c21dcec7bf83a09a2da1da0405108e6e431d828c,
//     docs/blink1-hid-commands.md (feature report 1; {1, 'n', r, g, b, 0,
//     0, n} sets the colour at once, n = 0 for every LED) and
//     hardware/firmware/usbconfig.h and blink1.c (VID 0x27B8, PID 0x01ED;
//     8 bytes after the report ID).
//
// Assumed, from the vendor's product descriptions rather than code: a
// Square or Strip has 8 LEDs, a Nano 2; a multi-LED stick needs mode 2
// before frame reports reach LEDs past the first, and keeps its mode
// across unplugging, so the mode is written only when it differs. Retrying
// once after EPIPE, ETIMEDOUT or EIO is this package's choice.
package led
