package led_test

import (
	"fmt"
	"log"

	"github.com/headnode/headnode/display/led"
	"github.com/headnode/headnode/hw/emu/blinkstick"
)

func Example() {
	// On a Pi: dev, err := (&led.Finder{}).Find(), which scans
	// /sys/class/hidraw. Here, an emulated BlinkStick Strip.
	stick := blinkstick.New(blinkstick.Strip, nil)
	dev, err := led.NewBlinkStick(stick, stick.Serial(), stick.BCDDevice(), true)
	if err != nil {
		log.Fatal(err)
	}
	if err := dev.Show([]led.RGB{{G: 76}, {R: 76, G: 33}}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(dev.Kind(), dev.Serial(), dev.LEDs(), "LEDs")
	fmt.Println(stick.LEDs()[:3])
	// Output:
	// BlinkStick Strip BS000001-3.0 8 LEDs
	// [#004c00 #4c2100 #000000]
}
