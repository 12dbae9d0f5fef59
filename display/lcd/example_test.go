package lcd_test

import (
	"fmt"
	"log"

	"github.com/headnode/headnode/display/lcd"
	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/hd44780"
)

func Example() {
	// On a Pi: bus, err := i2cbus.Open(1). Here, an emulated bus with a
	// 16x2 module on a standard PCF8574 backpack at 0x27.
	bus := emu.NewBus("emu-i2c-1")
	module := hd44780.New(hd44780.Boards[0], nil)
	bus.Attach(0x27, module)

	dev, err := lcd.New(bus, &lcd.DefaultOpts) // finds 0x27, detects the pin map
	if err != nil {
		log.Fatal(err)
	}
	if err := dev.Write([]string{"192.168.1.194", "4/4 up  NAT ok"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dev)
	for _, row := range module.Screen() {
		fmt.Printf("|%s|\n", row)
	}
	// Output:
	// hd44780 16x2 at 0x27 (PCF8574, standard)
	// |192.168.1.194   |
	// |4/4 up  NAT ok  |
}
