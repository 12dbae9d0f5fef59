package dhcpd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func storeFixture(t *testing.T, file string, mod func(*Options)) *fixture {
	return newFixture(t, func(o *Options) {
		o.LeaseFile = file
		o.Address = netip.MustParsePrefix("192.168.50.1/22")
		o.PoolFirst, o.PoolLast = netip.MustParseAddr("192.168.49.0"), netip.MustParseAddr("192.168.51.254")
		o.Limits = Limits{ClientRate: 1e6, ClientBurst: 1e6, NewRate: 1e6, NewBurst: 1e6}
		if mod != nil {
			mod(o)
		}
	})
}

// A journal cut at any byte (a crash mid-write) or damaged anywhere loads
// as the changes before the damage: never an error, never a wrong lease.
func TestJournalCutOrDamagedAnywhere(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dhcp-leases.json")
	f := storeFixture(t, file, nil)
	if err := f.s.Flush(); err != nil { // the first write: a snapshot
		t.Fatal(err)
	}
	var want []map[string]string // the table after each journal line
	state := map[string]string{}
	for i := range 12 {
		mac := macN(i)
		state[mac.String()] = f.lease(mac)
		if err := f.s.Flush(); err != nil {
			t.Fatal(err)
		}
		want = append(want, clone(state))
	}
	j, err := os.ReadFile(journalPath(file))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := os.ReadFile(file)
	lineEnds := []int{}
	for i, c := range j {
		if c == '\n' {
			lineEnds = append(lineEnds, i+1)
		}
	}
	if len(lineEnds) != 12 {
		t.Fatalf("journal has %d lines, want 12", len(lineEnds))
	}
	check := func(what string, journal []byte, lines int) {
		t.Helper()
		cut := t.TempDir()
		p := filepath.Join(cut, "dhcp-leases.json")
		os.WriteFile(p, snap, 0o644)
		os.WriteFile(journalPath(p), journal, 0o644)
		ld, err := readStore(p)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := map[string]string{}
		for _, l := range ld.leases {
			got[l.MAC.String()] = l.Addr.String()
		}
		exp := map[string]string{}
		if lines > 0 {
			exp = want[lines-1]
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("%s: loaded %v, want %v", what, got, exp)
		}
	}
	for n := 0; n <= len(j); n++ {
		lines := 0
		for _, e := range lineEnds {
			if e <= n {
				lines++
			}
		}
		check(fmt.Sprintf("journal cut at byte %d", n), j[:n], lines)
	}
	for _, at := range []int{0, 5, lineEnds[3] + 20, len(j) - 3} {
		bad := append([]byte(nil), j...)
		bad[at] ^= 0x20
		lines := 0
		for _, e := range lineEnds {
			if e <= at {
				lines++
			}
		}
		check(fmt.Sprintf("byte %d flipped", at), bad, lines)
	}
	// A restart on the damaged journal keeps the good part and appends
	// after it, not after the damage.
	os.WriteFile(journalPath(file), append(j[:lineEnds[5]], "0123abcd {\"seq\":99"...), 0o644)
	g := storeFixture(t, file, nil)
	if n := len(g.s.Leases()); n != 6 {
		t.Fatalf("after a torn journal: %d leases, want 6", n)
	}
	g.s.Flush()
	g.lease(macN(100))
	g.s.Flush()
	h := storeFixture(t, file, nil)
	if n := len(h.s.Leases()); n != 7 {
		t.Errorf("a lease granted after a restart on a torn journal is lost: %d leases, want 7", n)
	}
}

func clone(m map[string]string) map[string]string {
	c := map[string]string{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

// A damaged snapshot is reported; the server starts, and the next write
// replaces it with a good one.
func TestDamagedSnapshotIsReplaced(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dhcp-leases.json")
	os.WriteFile(file, []byte(`{"version":2,"leases":[{"mac":"02:00`), 0o644)
	s, err := New(&Options{Address: head, PoolFirst: netip.MustParseAddr("192.168.50.128"), PoolLast: netip.MustParseAddr("192.168.50.254"), LeaseFile: file})
	if s == nil || err == nil {
		t.Fatalf("New with a damaged snapshot: %v, %v", s, err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := readStore(file); err != nil {
		t.Errorf("after the first write the lease file is still damaged: %v", err)
	}
}

// Writes are batched: at most one a second however many leases change,
// the first change after a quiet spell at once.
func TestLeaseWritesAtMostOneASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "dhcp-leases.json")
		f := storeFixture(t, file, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.s.keep(ctx) }()
		synctest.Wait()
		start := f.s.Stats().LeaseWrites // the snapshot at start
		for i := range 200 {
			f.lease(macN(i))
			time.Sleep(10 * time.Millisecond) // 200 new leases in 2 s
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.s.Stats().LeaseWrites - start; n > 4 || n < 2 {
			t.Errorf("200 new leases over 2 s took %d writes, want 2-4 (one a second)", n)
		}
		// One change after a quiet spell is on disk at once.
		time.Sleep(5 * time.Second)
		before := f.s.Stats().LeaseWrites
		f.lease(macN(500))
		synctest.Wait()
		if f.s.Stats().LeaseWrites != before+1 {
			t.Errorf("a new lease after a quiet spell was not written at once")
		}
		cancel()
		<-done
		g := storeFixture(t, file, nil)
		if n := len(g.s.Leases()); n != 201 {
			t.Errorf("after a restart %d leases, want 201", n)
		}
	})
}

// Lease writes per hour at steady state: nodes renewing at half their
// lease time (as DHCP clients do), for a day.
func TestLeaseWritesPerHourAtSteadyState(t *testing.T) {
	for _, nodes := range []int{4, 256} {
		t.Run(fmt.Sprint(nodes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), "dhcp-leases.json")
				f := storeFixture(t, file, nil)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); f.s.keep(ctx) }()
				addrs := make([]string, nodes)
				for i := range nodes {
					addrs[i] = f.lease(macN(i))
				}
				// Stagger the renewals over the half hour, as
				// booting at different times does.
				time.Sleep(2 * time.Hour)
				for i := range nodes {
					f.send(renew(macN(i), addrs[i]))
				}
				synctest.Wait()
				start := f.s.Stats().LeaseWrites
				const hours = 24
				step := 30 * time.Minute / time.Duration(nodes)
				for range hours * 2 {
					for i := range nodes {
						time.Sleep(step)
						if r := f.send(renew(macN(i), addrs[i])); r == nil || r.Type != "ACK" {
							t.Fatalf("renewal: %+v", r)
						}
					}
				}
				synctest.Wait()
				perHour := float64(f.s.Stats().LeaseWrites-start) / hours
				t.Logf("%d nodes renewing every 30 min: %.1f lease writes per hour", nodes, perHour)
				// One write per node every 1.5 lease times (plus
				// compactions), never one per renewal.
				if renewals := float64(2 * nodes); perHour > renewals/2 {
					t.Errorf("%.1f writes per hour for %.0f renewals per hour", perHour, renewals)
				}
				cancel()
				<-done
			})
		})
	}
}
