package dnsd

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkLocalAnswer is the work of one local query after the library
// has parsed it: the answer built and packed.
func BenchmarkLocalAnswer(b *testing.B) {
	s := newServer(&testing.T{}, func(o *Options) { o.Rate, o.Burst = 1e12, 1 << 40 })
	q := query("p1.cluster.home.arpa", dns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		r := s.Answer(context.Background(), q, node, false)
		if _, err := r.Pack(); err != nil {
			b.Fatal(err)
		}
	}
}
