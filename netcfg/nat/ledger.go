package nat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
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

// ledgerFile keeps the name it had when all of this was one package, so
// that an upgrade still finds what an older version changed.
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

// Save writes the ledger to dir.
func (l Ledger) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	// Written atomically (a temporary file, fsync, rename), so a power cut
	// leaves either the old or the new record, never half of one.
	return renameio.WriteFile(filepath.Join(dir, ledgerFile), append(b, '\n'), 0o644)
}
