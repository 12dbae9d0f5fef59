package hateeprom

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/headnode/headnode/hw/detect"
)

// ClusterHAT returns the identity of a ClusterHAT of version major.minor
// (product_ver 0x0023 for v2.3).
func ClusterHAT(major, minor int) detect.HAT {
	return detect.HAT{
		Product:    "ZC4:ClusterHAT",
		ProductVer: uint16(major<<4 | minor),
		ProductID:  0x0004,
		UUID:       "622aef87-17d6-4022-a370-781e1c3fe2b9",
		Vendor:     "8086 Consultancy",
	}
}

// WriteTree writes h under dir as the firmware does in
// /proc/device-tree/hat.
func WriteTree(dir string, h detect.HAT) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]string{
		"product":     h.Product,
		"product_ver": fmt.Sprintf("0x%04x", h.ProductVer),
		"product_id":  fmt.Sprintf("0x%04x", h.ProductID),
		"uuid":        h.UUID,
		"vendor":      h.Vendor,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\x00"), 0o444); err != nil {
			return err
		}
	}
	return nil
}

// LinkClusterCTRL makes dir/ClusterCTRL-<bus> as the udev rule does (a
// link to the bus's i2c-dev node, which need not exist here).
func LinkClusterCTRL(dir string, bus int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, fmt.Sprintf("ClusterCTRL-%d", bus))
	os.Remove(link)
	return os.Symlink(fmt.Sprintf("i2c-%d", bus), link)
}
