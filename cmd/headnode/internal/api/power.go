package api

// Power reports the node power controller and the nodes. Scaffolding: the
// power part defines its fields.
type Power struct{}
