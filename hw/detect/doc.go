// Package detect finds node power hardware the way the official clusterctrl
// tool does: a HAT's identity from its EEPROM as the firmware exposes it in
// the device tree (/proc/device-tree/hat/), and ClusterCTRL boards from the
// /dev/ClusterCTRL-N links its udev rule makes for each board's
// i2c-tiny-usb bus. Both roots are parameters so tests can use emulated
// trees. Nothing found is an answer, not an error.
//
// Sources:
//   - raspberrypi/hats at 348dbf88d870bf50d6b4f23dbe2b64d60363f23c:
//     eeprom-format.md (the vendor info atom: uuid, product ID, product
//     version, vendor and product strings) and devicetree-guide.md, "HAT
//     identification" (the firmware copies them to /proc/device-tree/hat/
//     as vendor, product, product_id, product_ver and uuid; with no HAT the
//     node is deleted).
//   - burtyb/clusterhat-image at dd66f59ffe9e6e981288c9a49b0affbb7ca0c751:
//     files/usr/sbin/clusterctrl (all five files must be readable; NULs
//     are stripped; product must be "ZC4:ClusterHAT"; product_ver is
//     hexadecimal, 0x10-0x1F v1.x, 0x20-0x2F v2.x, 0x30-0x3F v3.x, the low
//     nibble the minor version; product_id is not checked; ClusterCTRL
//     buses are the numbers of the /dev/ClusterCTRL-* links) and
//     files/etc/udev/rules.d/90-clusterctrl.rules (USB 3171:001x gets
//     i2c-tiny-usb bound, and its i2c-dev node the link ClusterCTRL-%n,
//     %n being the bus number).
package detect
