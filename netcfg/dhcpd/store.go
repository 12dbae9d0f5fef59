package dhcpd

// Lease storage for SD cards. The lease table lives in two files:
//
//   - the snapshot (LeaseFile, e.g. dhcp-leases.json): the whole table,
//     replaced atomically (temporary file, fsync, rename), so it is always
//     the old table or the new one, never half of either;
//   - the journal (LeaseFile + ".journal"): one line per change since the
//     snapshot, appended and fsynced; each line carries a sequence number
//     and a CRC-32 of its text, so a line cut short by a crash or damaged
//     on the card is recognised and it and everything after it ignored.
//
// Changes are queued in memory under the server's lock (a map insert) and
// written by one goroutine outside it, at most once every WriteInterval:
// the first change after a quiet second is written at once, later ones
// are batched. A crash or power cut loses at most the changes of the last
// WriteInterval (plus one fsync). A renewal that only moves the expiry is
// not written at all while the file already records an expiry at least
// that late: every written lease records its expiry plus expiryMargin, so
// a node renewing at half its lease time causes one write every 1.5 lease
// times. The overstatement errs on the safe side: after a crash an address
// is held a little longer, never handed out while its owner still uses it.
// Releases and declines are written exactly. An extension that is due
// while the file still covers the lease for a quarter lease time waits up
// to a minute (an eighth of the lease time at most) to share a write.
//
// The journal is folded into a new snapshot when it holds more lines than
// the table has leases (and at least compactMin), and at every start.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// DefaultWriteInterval is the default Options.WriteInterval: the longest a
// change waits in memory before it is on disk, and the shortest time
// between two writes.
const DefaultWriteInterval = time.Second

// compactMin is the journal length below which it is never folded into the
// snapshot.
const compactMin = 256

// record is one journal line: a MAC's lease as it now stands, or Drop when
// the MAC's record is gone (a declined address).
type record struct {
	Seq uint64 `json:"seq"`
	Lease
	Drop bool `json:"drop,omitempty"`
}

// snapshotFile is the snapshot's form. Version 1 files (written before the
// journal existed) have no Seq and are read the same way.
type snapshotFile struct {
	Version int    `json:"version"`
	Seq     uint64 `json:"seq,omitempty"`
	// Clean: written as the server stopped; nothing came after it.
	Clean  bool    `json:"clean,omitempty"`
	Leases []Lease `json:"leases"`
}

func journalPath(path string) string { return path + ".journal" }

// loaded is what readStore found.
type loaded struct {
	leases []Lease
	seq    uint64 // the last sequence number in use
	// journalOK is the length of the journal's intact prefix: a new
	// record goes after it, never after a torn line.
	journalOK int64
	lines     int // intact journal lines after the snapshot
	// torn describes a damaged journal tail that was ignored ("" if none).
	torn string
	// clean: the server stopped cleanly (a clean snapshot, no journal).
	clean bool
}

// readStore reads the snapshot and replays the journal over it. A missing
// snapshot is an empty table; a damaged one is an error, with whatever the
// journal holds still returned.
func readStore(path string) (loaded, error) {
	var out loaded
	if path == "" {
		return out, nil
	}
	t := newLeases()
	var snapErr error
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		snapErr = err
	default:
		var f snapshotFile
		if err := json.Unmarshal(b, &f); err != nil {
			snapErr = fmt.Errorf("%s: %w", path, err)
		} else {
			for i := range f.Leases {
				l := f.Leases[i]
				if len(l.MAC) == 6 && l.Addr.Is4() {
					t.put(&l)
				}
			}
			out.seq = f.Seq
			out.clean = f.Clean
		}
	}
	snapSeq := out.seq
	jb, err := os.ReadFile(journalPath(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && snapErr == nil {
		snapErr = err
	}
	var off int64
	for len(jb) > 0 {
		i := bytes.IndexByte(jb, '\n')
		if i < 0 {
			out.torn = fmt.Sprintf("%d bytes of an unfinished line at the end of %s", len(jb), journalPath(path))
			break
		}
		r, ok := parseRecord(jb[:i])
		if !ok {
			out.torn = fmt.Sprintf("a damaged line at byte %d of %s and the %d bytes after it", off, journalPath(path), len(jb)-i-1)
			break
		}
		off += int64(i + 1)
		jb = jb[i+1:]
		out.journalOK = off
		if r.Seq <= snapSeq {
			continue // already in the snapshot (a crash between its rename and the journal's reset)
		}
		out.seq = max(out.seq, r.Seq)
		out.lines++
		if r.Drop {
			if old := t.byMAC[r.MAC.String()]; old != nil {
				t.remove(old)
			}
			continue
		}
		if len(r.MAC) == 6 && r.Addr.Is4() {
			l := r.Lease
			t.put(&l)
		}
	}
	out.clean = out.clean && out.lines == 0 && out.torn == ""
	out.leases = t.list(func(*Lease) bool { return true })
	return out, snapErr
}

// appendRecord adds r to b as one journal line: CRC-32 (IEEE) of the JSON
// in hex, a space, the JSON, a newline.
func appendRecord(b []byte, r *record) []byte {
	j, _ := json.Marshal(r) // a record always marshals
	b = fmt.Appendf(b, "%08x ", crc32.ChecksumIEEE(j))
	b = append(b, j...)
	return append(b, '\n')
}

func parseRecord(line []byte) (record, bool) {
	var r record
	if len(line) < 10 || line[8] != ' ' {
		return r, false
	}
	var want [8]byte
	hex.Encode(want[:], binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(line[9:])))
	if !bytes.Equal(want[:], line[:8]) {
		return r, false
	}
	if json.Unmarshal(line[9:], &r) != nil || r.Seq == 0 {
		return r, false
	}
	return r, true
}

// journal is the open journal and what the writer knows about the files.
// Only the writer (flush, under Server.writeMu) touches it.
type journal struct {
	path  string
	f     *os.File
	seq   uint64
	lines int
	// size is the journal's intact length; a write that failed halfway
	// is cut back to it.
	size int64
	// compact: fold the journal into the snapshot at the next write.
	compact bool
}

// writeSnapshot replaces the snapshot with ls as of seq and starts an
// empty journal.
func (j *journal) writeSnapshot(ls []Lease, seq uint64, clean bool) error {
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(snapshotFile{Version: 2, Seq: seq, Clean: clean, Leases: ls})
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(j.path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	// The snapshot holds everything up to seq; the journal's lines are
	// all <= seq and would be skipped, so it can go. A crash before the
	// truncation leaves lines the next start skips by their seq.
	if j.f == nil {
		f, err := os.OpenFile(journalPath(j.path), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		j.f = f
	}
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	if _, err := j.f.Seek(0, 0); err != nil {
		return err
	}
	j.size, j.lines, j.compact = 0, 0, false
	return nil
}

// appendRecords writes rs to the journal and fsyncs it.
func (j *journal) appendRecords(rs []record) error {
	if j.f == nil {
		return errors.New("journal not open")
	}
	var b []byte
	for i := range rs {
		b = appendRecord(b, &rs[i])
	}
	_, err := j.f.Write(b)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		// Cut a half-written line back off, so the next one does not
		// follow garbage.
		j.f.Truncate(j.size)
		j.f.Seek(j.size, 0)
		return err
	}
	j.size += int64(len(b))
	j.lines += len(rs)
	return nil
}
