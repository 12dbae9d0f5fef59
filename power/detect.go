package power

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/i2c"

	"github.com/headnode/headnode/hw/detect"
	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/clusterctrl"
	"github.com/headnode/headnode/power/clusterhat"
)

// Hardware is how detection reaches the machine; the daemon passes real
// or emulated buses and roots.
type Hardware struct {
	// HATDir is where the HAT EEPROM shows in the device tree
	// (detect.HATDir); DevDir holds the /dev/ClusterCTRL-N links.
	HATDir, DevDir string
	// I2C opens bus n.
	I2C func(n int) (i2c.Bus, error)
	// GPIO opens BCM line n (ClusterHAT v1).
	GPIO func(n int) (clusterhat.Line, error)
}

// DetectOptions says what to look for.
type DetectOptions struct {
	// Board is "auto", "clusterhat", "clusterctrl" or "none".
	Board string
	// HATBus and HATAddress locate a v2/v3 ClusterHAT's expander.
	HATBus     int
	HATAddress uint16
	// HATVersion forces a ClusterHAT version ("2.5") without reading its
	// EEPROM, as the official tool's CLUSTERHAT_FORCE; "" reads it.
	HATVersion string
	HAT        clusterhat.Opts
	CTRL       clusterctrl.Opts
}

// Problem is a board that is expected or was found but cannot be used.
type Problem struct {
	What string
	Err  error
	// Missing: the board is not there (nothing answers); otherwise the
	// bus or the board is broken.
	Missing bool
}

func (p Problem) Error() string { return p.What + ": " + p.Err.Error() }

// Detect finds the boards as the official tool does: a ClusterHAT by its
// EEPROM (product "ZC4:ClusterHAT"; product_ver 0x1X is v1.x on GPIO,
// 0x2X/0x3X v2.x/v3.x on the I2C expander) and ClusterCTRL boards by their
// /dev/ClusterCTRL-N links. No hardware is a cluster without nodes, not an
// error; a board that should be there and is not is a Problem.
func Detect(hw Hardware, o DetectOptions) (*Cluster, []Problem) {
	if o.Board == "none" {
		return NewCluster(nil, nil), nil
	}
	var problems []Problem
	var hat board.Board
	if o.Board == "auto" || o.Board == "clusterhat" {
		var p *Problem
		hat, p = detectHAT(hw, o)
		if p != nil {
			problems = append(problems, *p)
		}
	}
	var ctrls []Ordered
	if o.Board == "auto" || o.Board == "clusterctrl" {
		buses, err := detect.ClusterCTRLBuses(hw.DevDir)
		if err != nil {
			problems = append(problems, Problem{What: "ClusterCTRL", Err: err})
		}
		if len(buses) == 0 && o.Board == "clusterctrl" {
			problems = append(problems, Problem{What: "ClusterCTRL", Missing: true,
				Err: fmt.Errorf("no board found (no %s/ClusterCTRL-N; is it plugged in, and is the udev rule for i2c-tiny-usb installed?)", hw.DevDir)})
		}
		for _, n := range buses {
			what := fmt.Sprintf("ClusterCTRL on I2C bus %d", n)
			bus, err := hw.I2C(n)
			if err != nil {
				problems = append(problems, Problem{What: what, Err: err})
				continue
			}
			d, err := clusterctrl.New(bus, n, o.CTRL)
			if err != nil {
				problems = append(problems, Problem{What: what, Err: err, Missing: board.IsMissing(err)})
				continue
			}
			ctrls = append(ctrls, d)
		}
	}
	return NewCluster(hat, ctrls), problems
}

func detectHAT(hw Hardware, o DetectOptions) (board.Board, *Problem) {
	major, minor := 0, 0
	ho := o.HAT
	if o.HATVersion != "" {
		var err error
		major, minor, err = ParseHATVersion(o.HATVersion)
		if err != nil {
			return nil, &Problem{What: "ClusterHAT", Err: err}
		}
		ho.Forced = o.HATVersion
	} else {
		h, err := detect.ReadHAT(hw.HATDir)
		explicit := o.Board == "clusterhat"
		switch {
		case errors.Is(err, detect.ErrNoHAT):
			if explicit {
				return nil, &Problem{What: "ClusterHAT", Missing: true, Err: fmt.Errorf("no HAT EEPROM in %s (power.hat_version forces a version)", hw.HATDir)}
			}
			return nil, nil
		case err != nil:
			return nil, &Problem{What: "ClusterHAT", Err: err}
		case h.Product != "ZC4:ClusterHAT":
			if explicit {
				return nil, &Problem{What: "ClusterHAT", Missing: true, Err: fmt.Errorf("the HAT is %q, not a ClusterHAT", h.Product)}
			}
			return nil, nil
		}
		v := int(h.ProductVer & 0xFF)
		major, minor = v>>4, v&0x0F
		ho.UUID, ho.Vendor, ho.ProductID = h.UUID, h.Vendor, fmt.Sprintf("0x%04x", h.ProductID)
		if major < 1 || major > 3 {
			return nil, &Problem{What: "ClusterHAT", Err: fmt.Errorf("unknown ClusterHAT version (product_ver 0x%04x)", h.ProductVer)}
		}
	}
	if major == 1 {
		var lines [5]clusterhat.Line
		for i, n := range clusterhat.V1Pins {
			l, err := hw.GPIO(n)
			if err != nil {
				return nil, &Problem{What: fmt.Sprintf("ClusterHAT v1.%d", minor), Err: err}
			}
			lines[i] = l
		}
		ho.Minor = minor
		return clusterhat.NewGPIO(lines, ho), nil
	}
	what := fmt.Sprintf("ClusterHAT v%d.%d on I2C bus %d", major, minor, o.HATBus)
	bus, err := hw.I2C(o.HATBus)
	if err != nil {
		return nil, &Problem{What: what, Err: err}
	}
	ho.Address, ho.Major, ho.Minor = o.HATAddress, major, minor
	d, err := clusterhat.NewI2C(bus, o.HATBus, ho)
	if err != nil {
		return nil, &Problem{What: what, Err: err, Missing: board.IsMissing(err)}
	}
	return d, nil
}

// ParseHATVersion parses "2.5" into 2, 5 (majors 1-3, minors 0-15).
func ParseHATVersion(s string) (major, minor int, err error) {
	a, b, ok := strings.Cut(s, ".")
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || ma < 1 || ma > 3 || mi < 0 || mi > 15 {
		return 0, 0, fmt.Errorf("%q is not a ClusterHAT version; use major.minor such as \"1.3\", \"2.5\" or \"3.1\"", s)
	}
	return ma, mi, nil
}
