// Package gpio opens Raspberry Pi GPIO lines through periph.io for boards
// driven by pins (ClusterHAT v1.x) and wraps periph's one sharp edge for
// them once: reading a line must never change it.
//
// On the BCM283x memory-mapped driver (/dev/gpiomem, Pi Zero to Pi 4) a
// read returns the level of the pin whatever its direction, and Out sets
// the level before switching the pin to output, so a line already driving
// a node's power is never glitched. periph's character-device fallback
// (gpioioctl, used when /dev/gpiomem is missing, and on the Pi 5) turns an
// output into an input with a pull-up when it is read; on such a system
// Open refuses the line rather than risk cutting a node's power.
//
// Sources: periph.io/x/host/v3 v3.8.5, bcm283x/gpio.go (Pin.Read reads the
// level register; Pin.Out calls FastOut before setFunction(out), "to not
// create any glitch") and gpioioctl/gpio.go (GPIOLine.Read calls
// In(gpio.PullUp, ...) on a line that is not an input). The level
// register reads the pin in any function: Broadcom BCM2835 ARM
// Peripherals, section 6.1, GPLEVn.
package gpio
