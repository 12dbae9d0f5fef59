package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to the configuration parser: it must
// never panic, and every rejection must be a *Error whose problems are
// single lines that name the file, as the CLI prints them.
func FuzzParse(f *testing.F) {
	f.Add(DefaultText())
	f.Add([]byte(""))
	f.Add([]byte("[network]\nuplink_interface = \"wlan0\"\n[[nodes]]\nname = \"p1\"\naddress = \"192.168.50.11\"\n"))
	f.Add([]byte("[power]\nstagger = \"soon\"\nboot = \"sometimes\"\n"))
	f.Add([]byte("[lcd]\naddress = 0x99\n[http]\nlisten = [\"cluster:9180\", \"bad\"]\n"))
	f.Add([]byte("[[dhcp.static]]\nmac = \"02:00:00:00:00:05\"\nname = \"p1\"\n"))
	f.Add([]byte("[hardware.sim]\nboard = \"clusterctrl\"\nctrl = [\"stack\", \"single\"]\n"))
	f.Add([]byte("[network\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			// What was accepted must be accepted again, unchanged.
			if _, err := Parse(data, "fuzz.toml"); err != nil {
				t.Fatalf("accepted once, then rejected: %v", err)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %T %v is not a *config.Error", err, err)
		}
		if len(ce.Problems()) == 0 {
			t.Fatal("an error without problems")
		}
		for _, p := range ce.Problems() {
			if strings.Contains(p, "\n") || !strings.HasPrefix(p, "fuzz.toml") {
				t.Fatalf("problem %q is not one line naming the file", p)
			}
		}
	})
}
