// Package gpio opens Raspberry Pi GPIO lines for boards driven by pins
// (ClusterHAT v1.x) and for the head node's fan, and guarantees for both
// ways of reaching them what a board needs: reading a line never changes
// it, and driving one sets its level with its direction, so a line already
// driving a node's power is never glitched.
//
// Pi Zero to Pi 4 (/dev/gpiomem): periph's BCM283x memory-mapped driver. A
// read returns the level of the pin whatever its direction, and Out sets
// the level before switching the pin to output.
//
// Pi 5 (no /dev/gpiomem: the header is on the RP1): the GPIO character
// device, uAPI v2, through golang.org/x/sys/unix ioctls (chardev.go; no
// cgo). periph's own character-device driver (gpioioctl) is not used: it
// turns an output into an input with a pull-up when it is read, and
// requests an output before giving it a level.
//
// Sources: periph.io/x/host/v3 v3.8.5, bcm283x/gpio.go (Pin.Read reads the
// level register; Pin.Out calls FastOut before setFunction(out), "to not
// create any glitch") and gpioioctl/gpio.go (GPIOLine.Read calls
// In(gpio.PullUp, ...) on a line that is not an input; Out requests the
// line as an output without a value). The level register reads the pin in
// any function: Broadcom BCM2835 ARM Peripherals, section 6.1, GPLEVn. The
// character device: the Linux kernel's include/uapi/linux/gpio.h
// (GPIO_V2_GET_LINEINFO_IOCTL, GPIO_V2_GET_LINE_IOCTL with no direction
// flag for "as is", GPIO_V2_LINE_SET_CONFIG_IOCTL with an output-values
// attribute) and Documentation/userspace-api/gpio/chardev.rst.
package gpio
