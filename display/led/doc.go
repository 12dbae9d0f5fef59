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
// Protocol references: blinkstick-python and BlinkStickDotNet (report
// table), blinkstick-firmware (original firmware: reports 1-3 only), the
// blink(1) HID command list (lcd-and-led.md §4).
package led
