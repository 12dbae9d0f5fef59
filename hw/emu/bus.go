// Package emu is the emulated hardware: an I2C bus that emulated chips
// attach to, with the fault injection tests and `headnode sim` need. The
// chip models live in this package's subpackages; each behaves as its
// datasheet says, so that tests can assert what a user would see.
package emu

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"

	"periph.io/x/conn/v3/physic"
)

// Device is an emulated I2C chip: it receives every transaction addressed
// to it. w is written first, then r is filled, as in i2c.Bus.Tx. An error
// is what the bus master sees (for example a NACK in the middle of a
// transfer).
type Device interface {
	Tx(w, r []byte) error
}

// ErrNACK is what a transaction to an address nobody answers returns: the
// errno Linux's i2c-dev gives for a missing acknowledge.
var ErrNACK = syscall.EREMOTEIO

// ErrBus is an injected bus error (arbitration lost, SDA stuck).
var ErrBus = syscall.EIO

// Stats counts traffic, so tests and benchmarks can model bus time.
type Stats struct {
	Transactions int64
	Written      int64 // bytes written by the master, address bytes excluded
	Read         int64 // bytes read by the master
	// Injected counts transactions failed on purpose (SetInject,
	// SetNACKRate); NACKs from absent devices are not counted.
	Injected int64
	// Flipped counts reads returned with a bit flipped (SetFlipRate).
	Flipped int64
}

// Bus is an emulated I2C bus. It implements periph's i2c.Bus.
type Bus struct {
	name string

	mu    sync.Mutex
	devs  map[uint16]Device
	stats Stats
	// Inject, when set, is asked before every transaction; a non-nil
	// error is returned instead of performing it (the device sees
	// nothing), as with a NACK or a glitch on the wire.
	inject func(addr uint16, w []byte) error
	// nackRate is the probability that a transaction is NACKed.
	nackRate float64
	rng      *rand.Rand
	// flipRate is the probability that a read from flipAddr (0: any)
	// comes back with one bit flipped, chosen by flipRNG.
	flipRate float64
	flipAddr uint16
	flipRNG  *rand.Rand
}

// NewBus returns an empty bus; name is what String reports ("emu-i2c-1").
func NewBus(name string) *Bus {
	return &Bus{name: name, devs: map[uint16]Device{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// Attach puts a device at addr, replacing any other there.
func (b *Bus) Attach(addr uint16, d Device) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devs[addr] = d
}

// Detach removes the device at addr: from now on it NACKs, as a chip that
// lost power or was unplugged does.
func (b *Bus) Detach(addr uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.devs, addr)
}

// SetInject installs (or with nil removes) a fault injector.
func (b *Bus) SetInject(f func(addr uint16, w []byte) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inject = f
}

// SetNACKRate makes a fraction p of transactions fail with ErrNACK,
// chosen by a seeded generator so that runs are repeatable.
func (b *Bus) SetNACKRate(p float64, seed uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nackRate = p
	b.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// SetFlipRate makes a fraction p of the transactions that read from addr
// (0: from any address) return their data with one bit flipped and no
// error, as a glitch on the wire does: the master cannot tell. The bit is
// chosen by a seeded generator so that runs are repeatable; 0 turns it
// off.
func (b *Bus) SetFlipRate(p float64, addr uint16, seed uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flipRate, b.flipAddr = p, addr
	b.flipRNG = rand.New(rand.NewPCG(seed, seed^0xb17f11b5))
}

// Stats returns the traffic so far.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Tx implements i2c.Bus. Transactions are serialized, as on a real bus.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Transactions++
	if b.inject != nil {
		if err := b.inject(addr, w); err != nil {
			b.stats.Injected++
			return err
		}
	}
	if b.nackRate > 0 && b.rng.Float64() < b.nackRate {
		b.stats.Injected++
		return fmt.Errorf("%s: addr 0x%02x: %w", b.name, addr, ErrNACK)
	}
	d, ok := b.devs[addr]
	if !ok {
		return fmt.Errorf("%s: addr 0x%02x: %w", b.name, addr, ErrNACK)
	}
	b.stats.Written += int64(len(w))
	b.stats.Read += int64(len(r))
	err := d.Tx(w, r)
	if err == nil && len(r) > 0 && b.flipRate > 0 && (b.flipAddr == 0 || b.flipAddr == addr) && b.flipRNG.Float64() < b.flipRate {
		bit := b.flipRNG.IntN(8 * len(r))
		r[bit/8] ^= 1 << (bit % 8)
		b.stats.Flipped++
	}
	return err
}

// SetSpeed implements i2c.Bus; the emulation has no clock.
func (b *Bus) SetSpeed(physic.Frequency) error { return nil }

// String implements i2c.Bus.
func (b *Bus) String() string { return b.name }

// Close implements io.Closer, so a Bus is an i2c.BusCloser.
func (b *Bus) Close() error { return nil }
