package firewall

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The backend read from the links agrees with what each installed
// iptables says of itself (`--version`); a binary that is not a link
// (here a shell script standing in for one) is asked.
func TestDetectBackend(t *testing.T) {
	byVersion := func(path string) Backend {
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", path, err)
		}
		if m := backendRE.FindSubmatch(out); m != nil && string(m[1]) == "nf_tables" {
			return BackendIPTablesNFT
		}
		return BackendIPTablesLegacy
	}
	for _, name := range []string{"iptables", "iptables-nft", "iptables-legacy"} {
		path, err := resolveIPTables(map[string]string{"iptables": "auto", "iptables-nft": "nft", "iptables-legacy": "legacy"}[name])
		if err != nil {
			t.Fatalf("%s: %v (Debian package iptables)", name, err)
		}
		got, err := detectBackend(path)
		if want := byVersion(path); err != nil || got != want {
			t.Errorf("%s: backend %v, %v; its --version says %v", path, got, err, want)
		}
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "iptables")
	os.WriteFile(script, []byte("#!/bin/sh\necho 'iptables v1.8.9 (legacy)'\n"), 0o755)
	if got, err := detectBackend(script); err != nil || got != BackendIPTablesLegacy {
		t.Errorf("a wrapper saying legacy: %v, %v", got, err)
	}
	os.WriteFile(script, []byte("#!/bin/sh\necho 'iptables v1.8.9 (nf_tables)'\n"), 0o755)
	if got, err := detectBackend(script); err != nil || got != BackendIPTablesNFT {
		t.Errorf("a wrapper saying nf_tables: %v, %v", got, err)
	}
}
