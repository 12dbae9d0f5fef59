package subnet

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// RecordFile keeps the chosen subnet in the state directory, so that the
// cluster (and its nodes' addresses) stay where they are across restarts.
const RecordFile = "subnet.json"

type record struct {
	ClusterAddress string    `json:"cluster_address"`
	Chosen         time.Time `json:"chosen"`
}

// Load returns the head address chosen last (invalid if none, or the
// file is damaged: then the choice is made again).
func Load(dir string) netip.Prefix {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return netip.Prefix{}
	}
	var r record
	if json.Unmarshal(b, &r) != nil {
		return netip.Prefix{}
	}
	p, _ := netip.ParsePrefix(r.ClusterAddress)
	return p
}

// Save records head as the choice, atomically.
func Save(dir string, head netip.Prefix) error {
	b, _ := json.Marshal(record{ClusterAddress: head.String(), Chosen: time.Now().UTC()})
	return renameio.WriteFile(filepath.Join(dir, RecordFile), append(b, '\n'), 0o644)
}
