package console

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func texts(recs []Record) []string {
	var out []string
	for _, r := range recs {
		s := string(r.Data)
		if r.Event {
			s = "event:" + s
		}
		if r.Partial {
			s += "(partial)"
		}
		out = append(out, s)
	}
	return out
}

// Lines become records at their line feed, stamped with their first
// byte's time, whatever the reads' boundaries; the unfinished one is last.
func TestRingLinesAndTimes(t *testing.T) {
	r := NewRing(4096)
	r.Write([]byte("Boot"), t0)
	r.Write([]byte("ing\r\nsecond"), t0.Add(time.Second))
	r.Write([]byte(" line\nthird"), t0.Add(2*time.Second))
	got := r.Tail(0)
	want := []string{"Booting\r\n", "second line\n", "third(partial)"}
	if fmt.Sprint(texts(got)) != fmt.Sprint(want) {
		t.Fatalf("records %q, want %q", texts(got), want)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second)} {
		if !got[i].Time.Equal(at) {
			t.Errorf("record %d at %v, want %v (its first byte)", i, got[i].Time, at)
		}
	}
	if r.Idle(t0.Add(2 * time.Second)) {
		t.Error("the partial line counts as idle at the moment it began")
	}
	if !r.Idle(t0.Add(3 * time.Second)) {
		t.Error("the partial line does not count as idle a second later")
	}
	r.Seal()
	r.Note("console gone", t0.Add(4*time.Second))
	if got := texts(r.Tail(2)); fmt.Sprint(got) != fmt.Sprint([]string{"third", "event:console gone"}) {
		t.Errorf("after Seal and Note: %q", got)
	}
}

// A line without a line feed is cut every MaxLine bytes.
func TestRingSplitsLongLines(t *testing.T) {
	r := NewRing(64 << 10)
	r.Write(bytes.Repeat([]byte("x"), 2*MaxLine+10), t0)
	got := r.Tail(0)
	if len(got) != 3 || len(got[0].Data) != MaxLine || len(got[1].Data) != MaxLine || !got[2].Partial || len(got[2].Data) != 10 {
		t.Fatalf("records of %d bytes: %v", 2*MaxLine+10, texts(got))
	}
}

// However much is written, the ring keeps the newest records, in order,
// in its fixed buffer; a reader that fell behind is told how much it
// missed.
func TestRingIsBounded(t *testing.T) {
	const size = 8 << 10
	r := NewRing(size)
	pos := r.End()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for range 20000 {
		line := fmt.Sprintf("line %d %s\n", n, strings.Repeat("y", rng.IntN(120)))
		r.Write([]byte(line), t0.Add(time.Duration(n)*time.Millisecond))
		n++
	}
	if len(r.buf) != size || cap(r.buf) != size {
		t.Fatalf("buffer grew to %d", cap(r.buf))
	}
	recs := r.Tail(0)
	for _, k := range []int{1, 7, len(recs) - 1, len(recs), len(recs) + 5, 1 << 40} {
		if got := r.Tail(k); fmt.Sprint(texts(got)) != fmt.Sprint(texts(recs[max(0, len(recs)-k):])) {
			t.Errorf("Tail(%d) is not the last %d of Tail(0)", k, k)
		}
	}
	kept := 0
	for i, rec := range recs {
		kept += recordHeader + len(rec.Data)
		want := fmt.Sprintf("line %d ", n-len(recs)+i)
		if !strings.HasPrefix(string(rec.Data), want) {
			t.Fatalf("record %d of %d is %q, want it to start %q", i, len(recs), rec.Data, want)
		}
	}
	if kept > size || kept < size-MaxLine-recordHeader {
		t.Errorf("the records kept take %d bytes of a %d-byte ring", kept, size)
	}
	if r.Evicted != int64(n-len(recs)) {
		t.Errorf("Evicted %d, want %d", r.Evicted, n-len(recs))
	}
	got, next, missed := r.Since(pos)
	if missed == 0 || len(got) != len(recs) || next != r.End() {
		t.Errorf("a reader from the start: %d records, missed %d, next %d (end %d)", len(got), missed, next, r.End())
	}
	if got, _, missed := r.Since(next); len(got) != 0 || missed != 0 {
		t.Errorf("a reader at the end got %d records, missed %d", len(got), missed)
	}
}

// Records survive their encoding; a torn last record (the daemon died
// while writing) and anything not ours are dropped, not misread.
func TestEncodeDecode(t *testing.T) {
	recs := []Record{
		{Time: t0, Data: []byte("first\n")},
		{Time: t0.Add(time.Second), Event: true, Data: []byte("console opened")},
		{Time: t0.Add(2 * time.Second), Data: []byte{0, 0xff, 0x1b, '\n'}},
	}
	b := encode(nil, recs)
	if got := decode(b); fmt.Sprint(got) != fmt.Sprint(recs) {
		t.Fatalf("decode(encode) = %v, want %v", got, recs)
	}
	if got := decode(b[:len(b)-2]); len(got) != 2 {
		t.Errorf("a torn last record: %d records decoded, want 2", len(got))
	}
	bad := append([]byte(nil), b...)
	bad[recordHeader+len("first\n")+8] = 7 // the second record's kind
	if got := decode(bad); len(got) != 1 {
		t.Errorf("an unknown kind: %d records decoded, want 1", len(got))
	}
	if got := decode([]byte("not a console log at all, just text\n")); len(got) > 1 {
		t.Errorf("text decoded as %d records", len(got))
	}
}
