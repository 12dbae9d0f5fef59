// Package blinkstick emulates the BlinkStick family of USB RGB LEDs
// (original, Pro, Square, Strip, Nano, Flex) at the level of HID feature
// reports, as their firmware answers them, plus a fake sysfs tree so that
// discovery and hot-plug can be tested without a kernel.
//
// The model: report 1 sets LED 0 in RGB order; report 5 sets one LED by
// index, RGB; reports 6-9 carry frames of 8/16/32/64 LEDs in GRB order and
// only reach LEDs past the first in mode 2 (WS2812), which report 4 sets
// and which persists in EEPROM; report 0x81 is the Flex's LED count. The
// original BlinkStick knows reports 1-3 only. An unplugged stick answers
// ENODEV, as the kernel does for a device that went away.
//
// Sources: arvydas/blinkstick-python blinkstick/blinkstick.py at
// 8140b9fa18a9ff4f0e9df8e70c073f41cb8f1d35 (report layouts, the GRB frame
// order, variant by serial major version and bcdDevice) and
// arvydas/blinkstick-firmware main.cpp at
// 309778042415e9b616ce08b1f05aa89749780c51 (the original stick: reports
// 1-3, VID 0x20A0, PID 0x41E5, bcdDevice 0x0200). The sysfs layout is the
// kernel's for a hidraw device on USB (drivers/hid/hid-core.c hid_uevent
// writes HID_ID, HID_NAME, HID_PHYS and HID_UNIQ).
//
// Assumed: the firmware of the multi-LED sticks was not read. Their LED
// counts, the mode-2 requirement and EEPROM persistence come from the
// vendor's descriptions; a report of the wrong length, or one a variant
// does not know, is answered as a stalled control transfer (EPIPE) — the
// original firmware returns no data for unknown reports, and what the
// kernel then reports was not observed.
package blinkstick
