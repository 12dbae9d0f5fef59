package expander_test

import (
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/tca95xx"

	"github.com/headnode/headnode/hw/emu"
	"github.com/headnode/headnode/hw/emu/expander"
)

// The emulated expanders answer periph's TCA9554 driver, an independent
// implementation of the same register map (input, output, polarity,
// configuration at 0x00-0x03), the way the chips do: a level the driver
// sets appears on the pin, and a level driven onto an input pin is what
// the driver reads. This checks the emulation against someone else's
// reading of the datasheet, not only against ours.
func TestEmulationAnswersPeriphTCA9554Driver(t *testing.T) {
	for _, chip := range []expander.Chip{expander.PCA9554, expander.XRA1200P} {
		t.Run(chip.String(), func(t *testing.T) {
			bus := emu.NewBus("emu-i2c-1")
			dev := expander.New(chip)
			bus.Attach(0x20, dev)
			ext, err := tca95xx.New(bus, tca95xx.TCA9554, 0x20)
			if err != nil {
				t.Fatal(err)
			}
			defer ext.Close()
			pins := ext.Pins[0]
			for _, level := range []gpio.Level{gpio.Low, gpio.High, gpio.Low} {
				if err := pins[3].Out(level); err != nil {
					t.Fatal(err)
				}
				if got := dev.Level(3); got != bool(level) {
					t.Errorf("periph drove pin 3 %v, the emulated pin is %v", level, got)
				}
			}
			if err := pins[5].In(gpio.Float, gpio.NoEdge); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				drive expander.Drive
				want  gpio.Level
			}{{expander.Low, gpio.Low}, {expander.High, gpio.High}, {expander.Float, gpio.High}} {
				dev.SetExternal(5, c.drive)
				if got := pins[5].Read(); got != c.want {
					t.Errorf("pin 5 driven %v from outside: periph reads %v, want %v", c.drive, got, c.want)
				}
			}
			if dev.Level(3) {
				t.Error("reading pin 5 disturbed output pin 3")
			}
		})
	}
}
