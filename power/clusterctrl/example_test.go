package clusterctrl_test

import (
	"fmt"
	"log"

	"github.com/headnode/headnode/hw/emu"
	emuctrl "github.com/headnode/headnode/hw/emu/clusterctrl"
	"github.com/headnode/headnode/power/clusterctrl"
)

func ExampleNew() {
	// On a Pi: bus, err := i2cbus.Open(n) for /dev/ClusterCTRL-n. Here:
	// an emulated ClusterCTRL Triple.
	bus := emu.NewBus("emu-i2c-3")
	bus.Attach(emuctrl.Address, emuctrl.New(emuctrl.Opts{Variant: emuctrl.Triple, Order: 20, Busy: 1}))

	d, err := clusterctrl.New(bus, 3, clusterctrl.DefaultOpts)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.SetPower(2, true); err != nil {
		log.Fatal(err)
	}
	st, err := d.Read()
	if err != nil {
		log.Fatal(err)
	}
	i := d.Info()
	fmt.Println(i.Model, "firmware", i.Firmware, "order", i.Order, "powered:", st.Powered)
	// Output: ClusterCTRL Triple firmware 1.8 order 20 powered: [false true false]
}
