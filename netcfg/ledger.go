package netcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Ledger records what headnode changed on the system, so that `nat clear`
// undoes exactly that and nothing the user or another program set. It is
// kept in the state directory and survives restarts and reboots.
type Ledger struct {
	// ForwardingChanged: we switched ip_forward from 0 to 1.
	ForwardingChanged bool `json:"forwarding_changed,omitempty"`
	// AddressAdded is the cluster address we put on AddressInterface
	// (it was not there before).
	AddressAdded     string `json:"address_added,omitempty"`
	AddressInterface string `json:"address_interface,omitempty"`
	// Cleared: the user ran `nat clear`; the daemon leaves NAT off until
	// `nat apply`, across restarts.
	Cleared bool `json:"cleared,omitempty"`
}

const ledgerFile = "netcfg.json"

// LoadLedger reads the ledger from dir; a missing file is an empty ledger.
func LoadLedger(dir string) (Ledger, error) {
	var l Ledger
	b, err := os.ReadFile(filepath.Join(dir, ledgerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return Ledger{}, fmt.Errorf("%s: %w", filepath.Join(dir, ledgerFile), err)
	}
	return l, nil
}

// Save writes the ledger atomically (temporary file, fsync, rename), so a
// power cut leaves either the old or the new record, never half of one.
func (l Ledger) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ledgerFile), append(b, '\n'))
}

// WriteFileAtomic replaces path with data through a temporary file in the
// same directory, fsynced before the rename: readers and a power cut see
// the old content or the new, never a mix. Files the daemon keeps across
// restarts (the ledger, DHCP leases) are written this way.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
