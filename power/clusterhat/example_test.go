package clusterhat_test

import (
	"fmt"
	"log"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/expander"
	"github.com/headnode/headnode/power/clusterhat"
)

func ExampleNewI2C() {
	// On a Pi: bus, err := i2cbus.Open(1). Here: an emulated ClusterHAT
	// v2.5 expander that has just powered up.
	bus := emu.NewBus("emu-i2c-1")
	chip := expander.New(expander.XRA1200P)
	for pin := range 4 {
		chip.SetExternal(pin, expander.Low) // power-on-state link: nodes off
	}
	bus.Attach(0x20, chip)

	hat, err := clusterhat.NewI2C(bus, 1, clusterhat.DefaultOpts)
	if err != nil {
		log.Fatal(err)
	}
	fresh, err := hat.Init()
	if err != nil {
		log.Fatal(err)
	}
	if err := hat.SetPower(1, true); err != nil {
		log.Fatal(err)
	}
	st, err := hat.Read()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hat.Info().Model, hat.Info().Chip, "first init:", fresh, "powered:", st.Powered, "hub on:", *st.Hub)
	// Output: ClusterHAT v2.5 XRA1200P first init: true powered: [true false false false] hub on: true
}
