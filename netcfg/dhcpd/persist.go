package dhcpd

import (
	"context"
	"slices"
	"time"
)

// saveLease queues l's new state for the lease file (with the lock held).
// exact writes the expiry as it is (a release); otherwise the file records
// the expiry plus a margin of one lease time, and a renewal whose expiry
// the file already covers is not written at all (see store.go).
func (s *Server) saveLease(l *Lease, exact bool) {
	defer s.notifyChange()
	if s.o.LeaseFile == "" {
		return
	}
	if !exact && !l.disk.IsZero() && !l.Expires.After(l.disk) {
		return
	}
	r := &record{Lease: *l}
	r.MAC = slices.Clone(l.MAC)
	if !exact {
		r.Expires = l.Expires.Add(s.o.LeaseTime)
	}
	// An extension of a lease the file still covers for a good while
	// can wait for company: lazyDelay, well inside that cover.
	lazy := !exact && !l.disk.IsZero() && l.disk.After(time.Now().Add(s.o.LeaseTime/4))
	l.disk = r.Expires
	if lazy {
		s.queueLazy(r)
		return
	}
	s.queue(r)
}

// lazyDelay is how long an extension of an expiry the lease file still
// covers waits to share a write with other changes.
func (s *Server) lazyDelay() time.Duration { return min(time.Minute, s.o.LeaseTime/8) }

func (s *Server) queueLazy(r *record) {
	k := r.MAC.String()
	if p := s.pending[k]; p != nil {
		s.pending[k] = r // already due: goes with it
		return
	}
	if len(s.lazy) == 0 {
		select {
		case s.lazyKick <- struct{}{}:
		default:
		}
	}
	s.lazy[k] = r
}

// dropLease queues the removal of l's record (with the lock held).
func (s *Server) dropLease(l *Lease) {
	defer s.notifyChange()
	if s.o.LeaseFile == "" {
		return
	}
	s.queue(&record{Lease: Lease{MAC: slices.Clone(l.MAC), Addr: l.Addr}, Drop: true})
}

func (s *Server) queue(r *record) {
	delete(s.lazy, r.MAC.String())
	s.pending[r.MAC.String()] = r
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// Flush writes the changes not yet on disk now. Serve flushes on its own;
// Flush is for a server driven through Handle.
func (s *Server) Flush() error { return s.flush(false) }

// keep writes queued changes until ctx ends, at most one write every
// WriteInterval, then writes what is left. The first write folds the
// journal into a fresh snapshot, which also cuts off a torn last line.
func (s *Server) keep(ctx context.Context) {
	if s.o.LeaseFile == "" {
		return
	}
	s.flush(false)
	// The journal is closed when Serve ends (a reload makes a new
	// Server); a later write starts with a fresh snapshot.
	defer func() {
		s.writeMu.Lock()
		if s.j.f != nil {
			s.j.f.Close()
			s.j.f = nil
		}
		s.j.compact = true
		s.writeMu.Unlock()
	}()
	var lazy <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			s.flush(true)
			return
		case <-s.lazyKick:
			if lazy == nil {
				lazy = time.After(s.lazyDelay())
			}
			continue
		case <-lazy:
		case <-s.dirty:
		}
		lazy = nil
		s.flush(false)
		t := time.NewTimer(s.o.WriteInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			s.flush(true)
			return
		case <-t.C:
		}
	}
}

// flush writes the pending changes: as journal lines, or as a new
// snapshot when the journal is due for compaction. Only taking the
// changes holds the server's lock; the writing does not.
//
// clean (at a stop) writes a snapshot marked clean: the next start knows
// no change was lost and no offer is outstanding (see choose).
func (s *Server) flush(clean bool) error {
	if s.o.LeaseFile == "" {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string]*record{}
	for k, r := range s.lazy {
		batch[k] = r
	}
	clear(s.lazy)
	compact := clean || s.j.compact || s.j.lines+len(batch) > max(compactMin, 2*len(s.leases.byAddr))
	if len(batch) == 0 && !compact {
		s.mu.Unlock()
		return nil
	}
	var snap []Lease
	if compact {
		snap = s.leases.list(func(l *Lease) bool { return !l.Offered })
		for i := range snap {
			if l := &snap[i]; !l.disk.IsZero() {
				l.Expires = l.disk
			}
		}
	}
	s.mu.Unlock()

	var err error
	if compact {
		s.j.seq++
		err = s.j.writeSnapshot(snap, s.j.seq, clean)
	} else {
		rs := make([]record, 0, len(batch))
		for _, r := range batch {
			s.j.seq++
			r.Seq = s.j.seq
			rs = append(rs, *r)
		}
		err = s.j.appendRecords(rs)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.stats.SaveError == "" {
			s.o.Log.Error("cannot save DHCP leases; they will be lost on restart", "file", s.o.LeaseFile, "err", err)
		}
		s.stats.SaveError = err.Error()
		// Try again with the next change; newer states win.
		for k, r := range batch {
			if _, newer := s.pending[k]; !newer {
				s.pending[k] = r
			}
		}
		if compact {
			s.j.compact = true
		}
		return err
	}
	s.stats.SaveError = ""
	s.stats.LeaseWrites++
	return nil
}
