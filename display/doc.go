// Package display renders the daemon's state for people: the uplink
// address and health on an HD44780 character LCD behind an I2C backpack
// (display/lcd), and cluster health as pattern and colour on a USB RGB
// LED such as a BlinkStick (display/led). It renders what it is given and
// decides nothing about health itself: the daemon hands it a Status.
//
// Layout gives the LCD's rows for a Status and a panel size; Legend gives
// the LED patterns (the README's legend: pattern first, colour second,
// never faster than 2 Hz, a heartbeat so that a hung daemon shows). Screen
// and Light keep the two devices going: they find them, show every new
// Status as soon as it arrives, re-initialise the LCD periodically and
// after errors, find an unplugged LED again, and report what they see.
package display
