// Package hidraw talks to USB HID devices through Linux's hidraw driver in
// pure Go (no cgo, no libusb, no libudev): discovery by reading
// /sys/class/hidraw/*/device/uevent, and feature reports through the
// HIDIOCSFEATURE and HIDIOCGFEATURE ioctls on /dev/hidrawN.
//
// The kernel keeps the device bound to usbhid (unlike libusb-based tools,
// which detach it), so other programs can keep using it. hidraw minor
// numbers change on every replug: find a device again by its serial.
//
// Sources, in the Linux kernel tree:
//   - include/uapi/linux/hidraw.h: HIDIOCSFEATURE(len) is
//     _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06, len), HIDIOCGFEATURE(len) the
//     same with 0x07; the buffer starts with the report ID.
//   - include/uapi/asm-generic/ioctl.h: the _IOC layout (number in bits
//     0-7, type 8-15, size 16-29, direction 30-31, write 1, read 2), which
//     arm, arm64 and amd64 all use. The request values in the tests were
//     checked by compiling HIDIOCSFEATURE(4) and HIDIOCGFEATURE(33)
//     against the linux-libc-dev 6.1 headers (0xC0044806, 0xC0214807).
//   - drivers/hid/hid-core.c, hid_uevent: HID_ID=%04X:%08X:%08X (bus,
//     vendor, product), HID_NAME, HID_PHYS and HID_UNIQ (the USB serial).
//   - Documentation/hid/hidraw.rst: the ioctls and their semantics.
//
// The USB device's bcdDevice is two directories above the HID device in
// sysfs (HID device, USB interface, USB device); a device without a USB
// parent has none.
package hidraw
