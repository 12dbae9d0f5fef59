package emu

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/i2c"
)

var _ i2c.BusCloser = (*Bus)(nil)

type echo struct{ last []byte }

func (e *echo) Tx(w, r []byte) error {
	e.last = append([]byte(nil), w...)
	copy(r, w)
	return nil
}

func TestBusRoutesByAddressAndNACKsTheRest(t *testing.T) {
	b := NewBus("emu-i2c-1")
	d := &echo{}
	b.Attach(0x20, d)
	r := make([]byte, 2)
	if err := b.Tx(0x20, []byte{1, 2}, r); err != nil || r[1] != 2 {
		t.Fatalf("Tx to attached device: %v %x", err, r)
	}
	if err := b.Tx(0x27, []byte{1}, nil); !errors.Is(err, ErrNACK) {
		t.Errorf("Tx to empty address: %v, want NACK", err)
	}
	b.Detach(0x20)
	if err := b.Tx(0x20, []byte{1}, nil); !errors.Is(err, ErrNACK) {
		t.Errorf("Tx after detach: %v, want NACK", err)
	}
	if s := b.Stats(); s.Transactions != 3 || s.Written != 2 || s.Read != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestBusFaultInjection(t *testing.T) {
	b := NewBus("emu")
	d := &echo{}
	b.Attach(0x20, d)
	b.SetInject(func(addr uint16, w []byte) error {
		if len(w) > 0 && w[0] == 0xff {
			return ErrBus
		}
		return nil
	})
	if err := b.Tx(0x20, []byte{0xff}, nil); !errors.Is(err, ErrBus) || d.last != nil {
		t.Errorf("injected error: %v, device saw %x", err, d.last)
	}
	b.SetInject(nil)
	b.SetNACKRate(0.5, 7)
	nacks := 0
	for range 1000 {
		if b.Tx(0x20, []byte{1}, nil) != nil {
			nacks++
		}
	}
	if nacks < 400 || nacks > 600 {
		t.Errorf("%d of 1000 NACKed at rate 0.5", nacks)
	}
	if got := b.Stats().Injected; got != int64(nacks)+1 {
		t.Errorf("%d injected faults counted, want %d", got, nacks+1)
	}
}

// constant answers every read with the same byte.
type constant byte

func (c constant) Tx(_, r []byte) error {
	for i := range r {
		r[i] = byte(c)
	}
	return nil
}

func TestBusFlipsBitsOfReads(t *testing.T) {
	b := NewBus("emu")
	b.Attach(0x20, constant(0x00))
	b.Attach(0x27, constant(0x00))
	b.SetFlipRate(0.25, 0x20, 3)
	flipped := 0
	var r [2]byte
	for range 1000 {
		if err := b.Tx(0x20, []byte{0}, r[:]); err != nil {
			t.Fatal(err)
		}
		switch v := uint16(r[0]) | uint16(r[1])<<8; {
		case v == 0:
		case v&(v-1) == 0: // one bit set
			flipped++
		default:
			t.Fatalf("read % x: more than one bit flipped", r)
		}
		if err := b.Tx(0x27, []byte{0}, r[:]); err != nil || r != [2]byte{} {
			t.Fatalf("another address's read was changed: % x %v", r, err)
		}
		b.Tx(0x20, []byte{0, 1}, nil) // writes are never touched
	}
	if flipped < 200 || flipped > 300 || b.Stats().Flipped != int64(flipped) {
		t.Errorf("%d of 1000 reads flipped at rate 0.25 (counted %d)", flipped, b.Stats().Flipped)
	}
}
