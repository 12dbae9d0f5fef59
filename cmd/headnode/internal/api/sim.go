package api

// SimI2C is the body of POST /v1/sim/i2c: fault rates on an emulated bus.
type SimI2C struct {
	Bus int `json:"bus"`
	// NACKRate and ErrorRate are fractions (0-1) of transactions that
	// fail with a NACK or a bus error.
	NACKRate  float64 `json:"nack_rate"`
	ErrorRate float64 `json:"error_rate"`
	// FlipRate is the fraction of reads from FlipAddr (0: any address)
	// that come back with one bit flipped and no error.
	FlipRate float64 `json:"flip_rate,omitempty"`
	FlipAddr uint16  `json:"flip_addr,omitempty"`
}

// SimDevice is the body of POST /v1/sim/lcd (the backpack's power) and
// POST /v1/sim/led (the stick plugged in or not).
type SimDevice struct {
	On bool `json:"on"`
}

// SimI2CStats is the answer to GET /v1/sim/i2c?bus=N.
type SimI2CStats struct {
	Transactions int64 `json:"transactions"`
	// Injected counts the transactions failed on purpose, Flipped the
	// reads corrupted on purpose.
	Injected int64 `json:"injected"`
	Flipped  int64 `json:"flipped"`
}
