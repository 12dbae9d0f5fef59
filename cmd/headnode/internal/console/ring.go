package console

import (
	"encoding/binary"
	"time"
)

// Record is one piece of a console's output: a line (with its line end),
// or what came before the node fell silent or the line grew too long, and
// when its first byte arrived. Event records are the daemon's own notes in
// the log (the device came or went), not output of the node.
type Record struct {
	Time  time.Time
	Event bool
	Data  []byte
	// Partial marks the line still being written (only ever the last).
	Partial bool
}

// MaxLine is the longest record: a longer line is split, so that a node
// printing without line ends cannot hold data back from the log.
const MaxLine = 2048

// recordHeader is the encoding of a record's time, kind and length, in the
// ring and in the log files alike: 8 bytes of Unix nanoseconds, 1 byte of
// kind, 2 bytes of length, big-endian.
const recordHeader = 11

const (
	kindOutput = 0
	kindEvent  = 1
)

// Ring keeps a console's last output within a fixed number of bytes:
// sealed records, encoded back to back in a circular buffer, oldest first,
// and the line still being written beside it. Each record costs its
// length plus recordHeader bytes, so a flood of short lines keeps fewer
// bytes of output but never more memory. Positions are byte offsets since
// the ring was made, so a reader can tell what it missed. A Ring is not
// safe for concurrent use; its Console guards it.
type Ring struct {
	buf        []byte
	head, tail int64 // offsets of the oldest record and of the end

	line      []byte // the open record's data
	lineStart time.Time
	// Evicted counts records pushed out by newer ones.
	Evicted int64
}

// NewRing returns a ring of size bytes (at least 4 KiB, so that a record
// of MaxLine always fits with room to spare).
func NewRing(size int) *Ring {
	size = max(size, 4096)
	return &Ring{buf: make([]byte, size), line: make([]byte, 0, MaxLine)}
}

// Size is the ring's capacity in bytes.
func (r *Ring) Size() int { return len(r.buf) }

// Write adds output that arrived at now, ending a record at every line
// feed and every MaxLine bytes.
func (r *Ring) Write(p []byte, now time.Time) {
	for len(p) > 0 {
		if len(r.line) == 0 {
			r.lineStart = now
		}
		room := MaxLine - len(r.line)
		n := min(room, len(p))
		end := false
		for i, b := range p[:n] {
			if b == '\n' {
				n, end = i+1, true
				break
			}
		}
		r.line = append(r.line, p[:n]...)
		p = p[n:]
		if end || len(r.line) == MaxLine {
			r.Seal()
		}
	}
}

// Seal ends the open record, if any: the node fell silent, or its console
// went away.
func (r *Ring) Seal() {
	if len(r.line) == 0 {
		return
	}
	r.push(kindOutput, r.lineStart, r.line)
	r.line = r.line[:0]
}

// Note seals the open record and adds an event record.
func (r *Ring) Note(text string, now time.Time) {
	r.Seal()
	if len(text) > MaxLine {
		text = text[:MaxLine]
	}
	r.push(kindEvent, now, []byte(text))
}

// Idle reports whether the open record has been waiting since before t.
func (r *Ring) Idle(t time.Time) bool {
	return len(r.line) > 0 && r.lineStart.Before(t)
}

// PartialSince returns when the unfinished line began (false: none).
func (r *Ring) PartialSince() (time.Time, bool) {
	return r.lineStart, len(r.line) > 0
}

func (r *Ring) push(kind byte, t time.Time, data []byte) {
	need := int64(recordHeader + len(data))
	for r.tail+need-r.head > int64(len(r.buf)) {
		r.head += recordHeader + int64(r.lenAt(r.head))
		r.Evicted++
	}
	var h [recordHeader]byte
	binary.BigEndian.PutUint64(h[0:8], uint64(t.UnixNano()))
	h[8] = kind
	binary.BigEndian.PutUint16(h[9:11], uint16(len(data)))
	r.put(r.tail, h[:])
	r.put(r.tail+recordHeader, data)
	r.tail += need
}

func (r *Ring) put(off int64, p []byte) {
	i := int(off % int64(len(r.buf)))
	n := copy(r.buf[i:], p)
	copy(r.buf, p[n:])
}

func (r *Ring) get(off int64, p []byte) {
	i := int(off % int64(len(r.buf)))
	n := copy(p, r.buf[i:])
	copy(p[n:], r.buf)
}

func (r *Ring) lenAt(off int64) int {
	var b [2]byte
	r.get(off+9, b[:])
	return int(binary.BigEndian.Uint16(b[:]))
}

// recordAt decodes the record at off, returning the offset after it.
func (r *Ring) recordAt(off int64) (Record, int64) {
	var h [recordHeader]byte
	r.get(off, h[:])
	n := int(binary.BigEndian.Uint16(h[9:11]))
	data := make([]byte, n)
	r.get(off+recordHeader, data)
	return Record{Time: time.Unix(0, int64(binary.BigEndian.Uint64(h[0:8]))), Event: h[8] == kindEvent, Data: data}, off + recordHeader + int64(n)
}

// Pos is a reader's place in a ring: the offset of the next record.
type Pos int64

// End is the position after the last sealed record.
func (r *Ring) End() Pos { return Pos(r.tail) }

// Start is the position of the oldest record kept.
func (r *Ring) Start() Pos { return Pos(r.head) }

// Since returns the sealed records from pos on and the position after
// them. missed counts the bytes of records evicted before the reader got
// to them.
func (r *Ring) Since(pos Pos) (recs []Record, next Pos, missed int64) {
	off := int64(pos)
	if off < r.head {
		missed = r.head - off
		off = r.head
	}
	for off < r.tail {
		var rec Record
		rec, off = r.recordAt(off)
		recs = append(recs, rec)
	}
	return recs, Pos(off), missed
}

// Encoded copies whole sealed records from pos on, as they are encoded,
// into buf, as many as fit, and returns how many bytes it copied and the
// position after them: what the log files append, a buffer at a time.
// Records evicted before pos was reached are skipped.
func (r *Ring) Encoded(pos Pos, buf []byte) (int, Pos) {
	off := max(int64(pos), r.head)
	end := off
	for end < r.tail {
		next := end + recordHeader + int64(r.lenAt(end))
		if next-off > int64(len(buf)) {
			break
		}
		end = next
	}
	r.get(off, buf[:end-off])
	return int(end - off), Pos(end)
}

// Tail returns the last n records (all of them when n <= 0), the open one
// last, marked Partial. Only those are copied: the status asks for a few
// every second, of a ring that may hold thousands.
func (r *Ring) Tail(n int) []Record {
	from := r.head
	if n > 0 {
		if len(r.line) > 0 {
			n--
		}
		// Walk the headers, remembering the last n starts in a circle.
		n = min(n, len(r.buf)/recordHeader+1)
		from = r.tail
		if n > 0 {
			starts := make([]int64, n)
			count := 0
			for off := r.head; off < r.tail; off += recordHeader + int64(r.lenAt(off)) {
				starts[count%n] = off
				count++
			}
			switch {
			case count == 0:
			case count < n:
				from = starts[0]
			default:
				from = starts[count%n]
			}
		}
	}
	recs, _, _ := r.Since(Pos(from))
	if len(r.line) > 0 {
		recs = append(recs, Record{Time: r.lineStart, Data: append([]byte(nil), r.line...), Partial: true})
	}
	return recs
}

// Load puts records read back from disk into the ring, oldest first.
func (r *Ring) Load(recs []Record) {
	for _, rec := range recs {
		kind := byte(kindOutput)
		if rec.Event {
			kind = kindEvent
		}
		data := rec.Data
		if len(data) > MaxLine {
			data = data[:MaxLine]
		}
		r.push(kind, rec.Time, data)
	}
}

// encode appends the encoding of recs, as the ring and the log files hold
// them.
func encode(dst []byte, recs []Record) []byte {
	for _, rec := range recs {
		var h [recordHeader]byte
		binary.BigEndian.PutUint64(h[0:8], uint64(rec.Time.UnixNano()))
		if rec.Event {
			h[8] = kindEvent
		}
		binary.BigEndian.PutUint16(h[9:11], uint16(len(rec.Data)))
		dst = append(dst, h[:]...)
		dst = append(dst, rec.Data...)
	}
	return dst
}

// decode reads records encoded back to back. A record cut short (the
// daemon died while writing it) and anything after it are dropped, as is
// a record of an unknown kind or longer than MaxLine (the file is not
// ours, or damaged).
func decode(b []byte) []Record {
	var out []Record
	for len(b) >= recordHeader {
		n := int(binary.BigEndian.Uint16(b[9:11]))
		kind := b[8]
		if n > MaxLine || kind > kindEvent || len(b) < recordHeader+n {
			break
		}
		out = append(out, Record{
			Time:  time.Unix(0, int64(binary.BigEndian.Uint64(b[0:8]))),
			Event: kind == kindEvent,
			Data:  append([]byte(nil), b[recordHeader:recordHeader+n]...),
		})
		b = b[recordHeader+n:]
	}
	return out
}
