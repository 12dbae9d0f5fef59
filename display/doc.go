// Package display renders the daemon's state for people: the uplink
// address and health on an HD44780 character LCD behind an I2C backpack, and
// cluster health as colour and pattern on a BlinkStick-style USB LED. It
// renders what it is given and decides nothing about health itself.
package display
