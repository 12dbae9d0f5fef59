package machine

// USBRoot is the root of the sysfs and /dev trees that USB serial devices
// (node consoles) are listed in (usbtty.List); "" is this system's own.
// An emulated machine's tree is filled by whoever emulates its nodes
// (`headnode sim` plugs a console in as each node boots); the machine
// itself only says where it is, and the daemon lists and opens what is
// there exactly as it does on a real head node.
func (m *Machine) USBRoot() string {
	if m.emu != nil {
		return m.emu.usbRoot
	}
	return ""
}
