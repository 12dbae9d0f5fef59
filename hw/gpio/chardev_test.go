package gpio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The structures are the kernel's (include/uapi/linux/gpio.h): their sizes
// are part of the ioctl numbers, so a layout mistake would make every call
// fail with ENOTTY on a Pi.
func TestStructuresHaveTheKernelsSizes(t *testing.T) {
	for _, s := range []struct {
		name      string
		got, want uintptr
	}{
		{"gpiochip_info", unsafe.Sizeof(gpiochipInfo{}), 68},
		{"gpio_v2_line_attribute", unsafe.Sizeof(lineAttribute{}), 16},
		{"gpio_v2_line_config_attribute", unsafe.Sizeof(lineConfigAttribute{}), 24},
		{"gpio_v2_line_config", unsafe.Sizeof(lineConfig{}), 272},
		{"gpio_v2_line_request", unsafe.Sizeof(lineRequest{}), 592},
		{"gpio_v2_line_info", unsafe.Sizeof(lineInfo{}), 256},
		{"gpio_v2_line_values", unsafe.Sizeof(lineValues{}), 16},
	} {
		if s.got != s.want {
			t.Errorf("struct %s is %d bytes, the kernel's %d", s.name, s.got, s.want)
		}
	}
	// As the kernel's headers define them (the values glibc's ioctl sees).
	for _, r := range []struct {
		name      string
		got, want uintptr
	}{
		{"GPIO_GET_CHIPINFO_IOCTL", getChipInfo, 0x8044b401},
		{"GPIO_V2_GET_LINEINFO_IOCTL", getLineInfo, 0xc100b405},
		{"GPIO_V2_GET_LINE_IOCTL", getLine, 0xc250b407},
		{"GPIO_V2_LINE_SET_CONFIG_IOCTL", setLineConfig, 0xc110b40d},
		{"GPIO_V2_LINE_GET_VALUES_IOCTL", getLineValues, 0xc010b40e},
	} {
		if r.got != r.want {
			t.Errorf("%s = %#x, want %#x", r.name, r.got, r.want)
		}
	}
}

// fakeKernel models the character device as the kernel's gpiolib-cdev
// does: line info gives the direction; a request without a direction flag
// leaves the line as it is; a configuration with the output flag and an
// output-values attribute sets the level as it makes the line an output;
// a second request of a requested line is EBUSY.
type fakeKernel struct {
	label    string
	output   [54]bool
	level    [54]bool
	pull     [54]bool
	owner    map[int32]uint32 // request fd -> offset
	reqs     int
	glitches int // times a line drove a level it was not asked for
}

func (k *fakeKernel) ioctl(fd, req uintptr, arg unsafe.Pointer) error {
	switch req {
	case getChipInfo:
		info := (*gpiochipInfo)(arg)
		copy(info.Label[:], k.label)
		info.Lines = 54
	case getLineInfo:
		info := (*lineInfo)(arg)
		info.Flags = lineFlagInput
		if k.output[info.Offset] {
			info.Flags = lineFlagOutput
		}
		for _, o := range k.owner {
			if o == info.Offset {
				info.Flags |= lineFlagUsed
				copy(info.Consumer[:], "headnode")
			}
		}
	case getLine:
		r := (*lineRequest)(arg)
		for _, o := range k.owner {
			if o == r.Offsets[0] {
				return unix.EBUSY
			}
		}
		if r.Config.Flags&(lineFlagInput|lineFlagOutput) != 0 || r.Config.NumAttrs != 0 {
			panic("the line was requested with a direction")
		}
		k.reqs++
		r.FD = int32(100 + k.reqs)
		k.owner[r.FD] = r.Offsets[0]
	case getLineValues:
		o := k.owner[int32(fd)]
		v := (*lineValues)(arg)
		v.Bits = 0
		if (k.output[o] && k.level[o]) || (!k.output[o] && k.pull[o]) {
			v.Bits = 1
		}
	case setLineConfig:
		o := k.owner[int32(fd)]
		c := (*lineConfig)(arg)
		want := false
		if c.NumAttrs == 1 && c.Attrs[0].Attr.ID == attrOutputValues && c.Attrs[0].Mask == 1 {
			want = c.Attrs[0].Attr.Value&1 == 1
		}
		if c.Flags&lineFlagOutput != 0 {
			if !k.output[o] && want != k.pull[o] && c.NumAttrs == 0 {
				k.glitches++
			}
			k.output[o], k.level[o] = true, want
		}
	default:
		return unix.ENOTTY
	}
	return nil
}

func chipDir(t *testing.T, n int) string {
	dir := t.TempDir()
	for i := range n {
		os.WriteFile(filepath.Join(dir, "gpiochip"+string(rune('0'+i))), nil, 0o600)
	}
	return dir
}

func TestCharacterDeviceLine(t *testing.T) {
	k := &fakeKernel{label: "pinctrl-rp1", owner: map[int32]uint32{}}
	k.pull[6] = true // GPIO6 pulled high at reset
	k.output[13], k.level[13] = true, true
	dev := chipDir(t, 1)
	p1, err := openCdev(k, dev, 6)
	if err != nil {
		t.Fatal(err)
	}
	if out, high, err := p1.State(); err != nil || out || !high {
		t.Errorf("GPIO6 as it came up: output %v high %v %v; want an input reading high", out, high, err)
	}
	if k.output[6] {
		t.Fatal("reading the line made it an output")
	}
	if err := p1.Drive(false); err != nil || !k.output[6] || k.level[6] {
		t.Errorf("drive low: %v, output %v level %v", err, k.output[6], k.level[6])
	}
	// A line left driven (by the daemon before it restarted) reads as it
	// is and stays so.
	p2, err := openCdev(k, dev, 13)
	if err != nil {
		t.Fatal(err)
	}
	if out, high, err := p2.State(); err != nil || !out || !high || !k.level[13] {
		t.Errorf("GPIO13 driven high: output %v high %v %v", out, high, err)
	}
	if k.reqs != 2 {
		t.Errorf("%d requests, want one per line", k.reqs)
	}
	// Someone else has the line.
	other := &cdevLine{k: k, chip: p2.chip, offset: 13, name: "GPIO13", req: -1}
	if _, _, err := other.State(); err == nil || !strings.Contains(err.Error(), `GPIO13 is in use by "headnode"`) {
		t.Errorf("a line in use: %v", err)
	}
	if k.glitches != 0 {
		t.Errorf("%d glitches", k.glitches)
	}
}

func TestHeaderChipIsFoundByLabel(t *testing.T) {
	k := &fakeKernel{label: "brcmstb-gpio", owner: map[int32]uint32{}}
	if _, err := openCdev(k, chipDir(t, 2), 5); err == nil || !strings.Contains(err.Error(), "no Raspberry Pi GPIO chip among gpiochip0 brcmstb-gpio, gpiochip1 brcmstb-gpio") {
		t.Errorf("no header chip: %v", err)
	}
	if _, err := openCdev(k, t.TempDir(), 5); err == nil || !strings.Contains(err.Error(), "gpiochip*") {
		t.Errorf("no chips: %v", err)
	}
	k.label = "pinctrl-bcm2711"
	if _, err := openCdev(k, chipDir(t, 1), 5); err != nil {
		t.Errorf("a Pi 4's chip: %v", err)
	}
}
