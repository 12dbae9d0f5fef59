// Package hateeprom emulates what a HAT's ID EEPROM leaves behind: the
// Raspberry Pi firmware reads the EEPROM at boot and publishes its vendor
// info atom in the device tree as /proc/device-tree/hat/{product,
// product_ver, product_id, uuid, vendor}, each a NUL-terminated string. It
// also makes the /dev/ClusterCTRL-N links of ClusterCTRL boards.
//
// Sources: raspberrypi/hats at 348dbf88d870bf50d6b4f23dbe2b64d60363f23c
// (eeprom-format.md, the vendor info atom; devicetree-guide.md, "HAT
// identification", the /proc/device-tree/hat files, product_id and
// product_ver written as 0x-prefixed hexadecimal); for the ClusterHAT,
// burtyb/clusterhat-image at dd66f59ffe9e6e981288c9a49b0affbb7ca0c751
// (files/usr/sbin/clusterctrl expects product "ZC4:ClusterHAT" and
// product_ver 0xMm for vMAJOR.MINOR; files/etc/udev/rules.d/
// 90-clusterctrl.rules makes ClusterCTRL-%n link to the bus's i2c-dev
// node) and burtyb/ClusterCTRL src/main.c at
// f3d792468b43cec28f4d168caa41bff10d9f2c2b (chdta_scan accepts only
// product ID 0x0004, the ClusterHAT's). Vendor "8086 Consultancy" and the
// UUID are example values: a UUID is unique to each board.
package hateeprom
