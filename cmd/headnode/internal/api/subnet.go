package api

import "time"

// Subnet is how the cluster subnet was chosen, and its moves.
type Subnet struct {
	// Mode is "auto" (chosen from the candidates), "fixed" (the
	// configured cluster_address) or "off" (cluster_address = "").
	Mode string `json:"mode"`
	// Address is the head's cluster address in use ("10.213.0.1/24").
	Address string `json:"address,omitempty"`
	Pool    string `json:"pool,omitempty"`
	// Nodes is how many nodes have an address below the pool.
	Nodes int `json:"nodes,omitempty"`
	// Problem is why nothing was put on the cluster side, or a clash
	// found later with a fixed address, in one line; "" when none.
	Problem string `json:"problem,omitempty"`
	// Moving: the cluster is moving to Address; the nodes' links are
	// being cycled so that they ask for new leases.
	Moving   bool      `json:"moving,omitempty"`
	Moves    int       `json:"moves,omitempty"`
	LastMove time.Time `json:"last_move,omitzero"`
	// From is the subnet moved away from, and why.
	From string `json:"from,omitempty"`
	Why  string `json:"why,omitempty"`
}
