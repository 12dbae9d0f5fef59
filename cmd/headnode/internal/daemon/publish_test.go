package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/netcfg/links"
	"github.com/headnode/headnode/netcfg/nat"
	"github.com/headnode/headnode/power"
	"github.com/headnode/headnode/power/nodename"
)

// streamRecorder is a ResponseWriter that a handler may write to and
// flush while the test reads what arrived.
type streamRecorder struct {
	mu     sync.Mutex
	header http.Header
	buf    bytes.Buffer
}

func (r *streamRecorder) Header() http.Header { return r.header }
func (r *streamRecorder) WriteHeader(int)     {}
func (r *streamRecorder) Flush()              {}
func (r *streamRecorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

// statuses returns the statuses streamed so far.
func (r *streamRecorder) statuses(t *testing.T) []api.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []api.Status
	for _, line := range bytes.Split(bytes.TrimSpace(r.buf.Bytes()), []byte("\n")) {
		var s api.Status
		if err := json.Unmarshal(line, &s); err != nil {
			t.Fatalf("stream line %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

// An event that changes nothing users see wakes no watcher: the status
// stream sends nothing and the published status stays the same value. One
// that changes something, a single time stamp included, wakes every
// watcher once with the new status.
func TestPublishOnlyOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := config.Default()
		cfg.Network.UplinkInterface, cfg.Network.ClusterInterface = "eth1", "eth0"
		var notified []string
		d := &Daemon{log: slog.New(slog.DiscardHandler), events: make(chan event, 16), changed: make(chan struct{})}
		d.opts.Notifier.Send = func(s string) error { notified = append(notified, s); return nil }
		st := &state{cfg: cfg}
		st.resetNetwork()
		on := true
		st.power = powerState{nodes: []powerNode{{name: "p1", num: 1, n: 1, addr: netip.MustParseAddr("192.168.50.11")}},
			report: power.Report{Powered: []*bool{&on}, Requested: []string{"on"}}, life: power.Lifecycle{DownAfter: time.Second}}
		ls := map[string]links.State{
			"eth1": {Name: "eth1", Exists: true, Up: true, Carrier: true, IPv4: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}},
			"eth0": {Name: "eth0", Exists: true, Up: true},
		}
		d.applyLinks(st, ls)
		st.net.report = &nat.KeeperReport{At: time.Now(), Result: nat.Result{Subnet: netip.MustParsePrefix("192.168.50.0/24")}}
		st.applyNAT()
		d.settle(st)

		var watchers []*streamRecorder
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // ends the streams, also when a check fails
		for range 2 {
			w := &streamRecorder{header: http.Header{}}
			watchers = append(watchers, w)
			go d.handleWatch(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/watch", nil))
		}
		synctest.Wait()
		published, changed := d.current()

		// What the parts send when nothing changed: the same link
		// snapshot, the same power read-back, a probe round with the same
		// answer, an event doing nothing at all.
		time.Sleep(time.Second)
		for _, ev := range []event{
			func(st *state) { d.applyLinks(st, ls) },
			func(st *state) {
				st.power.report = power.Report{Powered: []*bool{&on}, Requested: []string{"on"}}
				st.updatePower()
			},
			func(st *state) { st.power.life.Seen("p1", false, time.Now()); st.updatePower() },
			func(*state) {},
		} {
			ev(st)
			d.settle(st)
		}
		synctest.Wait()
		if s, _ := d.current(); s != published {
			t.Error("an event that changed nothing published a new status")
		}
		select {
		case <-changed:
			t.Error("an event that changed nothing woke the watchers")
		default:
		}
		for i, w := range watchers {
			if n := len(w.statuses(t)); n != 1 {
				t.Errorf("watcher %d got %d statuses, want only the first", i, n)
			}
		}

		// A new address, and a NAT check at a new time: each is news.
		for i, ev := range []event{
			func(st *state) {
				ls["eth1"] = links.State{Name: "eth1", Exists: true, Up: true, Carrier: true, IPv4: []netip.Prefix{netip.MustParsePrefix("10.0.0.7/24")}}
				d.applyLinks(st, ls)
			},
			func(st *state) {
				r := *st.net.report
				r.At = time.Now()
				st.net.report = &r
				st.applyNAT()
			},
		} {
			ev(st)
			d.settle(st)
			synctest.Wait()
			select {
			case <-changed:
			default:
				t.Fatalf("change %d woke nobody", i)
			}
			s, next := d.current()
			if s == published {
				t.Fatalf("change %d published nothing", i)
			}
			published, changed = s, next
			for j, w := range watchers {
				got := w.statuses(t)
				if len(got) != 2+i || got[len(got)-1].Uplink.Address != "10.0.0.7/24" || !got[len(got)-1].NAT.LastCheck.Equal(s.NAT.LastCheck) {
					t.Errorf("after change %d watcher %d got %d statuses, the last %+v %+v", i, j, len(got), got[len(got)-1].Uplink, got[len(got)-1].NAT)
				}
			}
			time.Sleep(time.Second)
		}
		if len(notified) != 2 {
			t.Errorf("systemd was told %q; want READY, then the new uplink address", notified)
		}
	})
}

// BenchmarkPublish: what an event costs the loop when it changes nothing
// (most of them) and when it changes something, beside what every event
// cost before publish compared (a deep copy and a wake-up of the
// watchers, none of them listening here). The status is a ClusterHAT's
// four nodes with twenty DHCP leases.
func BenchmarkPublish(b *testing.B) {
	st := &state{cfg: config.Default()}
	st.resetNetwork()
	on := true
	for n := 1; n <= 4; n++ {
		st.status.Power.Nodes = append(st.status.Power.Nodes, api.Node{Name: nodename.Name(n), Address: "192.168.50.1" + nodename.Name(n)[1:], State: api.NodeUp, Since: time.Now(), Powered: &on, Reachable: true, Requested: "on"})
	}
	for i := range 20 {
		st.status.DHCP.Leases = append(st.status.DHCP.Leases, api.Lease{Address: netip.AddrFrom4([4]byte{192, 168, 50, byte(128 + i)}).String(), MAC: "b8:27:eb:00:00:01", Hostname: "host", Expires: time.Now()})
	}
	st.deriveHealth()
	newDaemon := func() *Daemon { return &Daemon{changed: make(chan struct{})} }
	b.Run("unchanged", func(b *testing.B) {
		d := newDaemon()
		d.publish(st)
		for b.Loop() {
			d.publish(st)
		}
	})
	b.Run("changed", func(b *testing.B) {
		d := newDaemon()
		for b.Loop() {
			st.status.NAT.Repairs++
			d.publish(st)
		}
	})
	b.Run("before/every event", func(b *testing.B) {
		d := newDaemon()
		for b.Loop() {
			js, _ := json.Marshal(&st.status)
			var s api.Status
			json.Unmarshal(js, &s)
			d.published.Store(&s)
			d.watchMu.Lock()
			close(d.changed)
			d.changed = make(chan struct{})
			d.watchMu.Unlock()
		}
	})
}
