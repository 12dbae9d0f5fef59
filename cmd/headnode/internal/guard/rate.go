package guard

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateLimits bound each client's request rate.
type RateLimits struct {
	// PerSecond requests, in bursts of up to Burst.
	PerSecond float64
	Burst     int
	// MaxWait: a request over the rate waits for its turn, up to this
	// long; one that would wait longer is refused with 429 Too Many
	// Requests. Waiting, not refusing, is what keeps a well-behaved client
	// that is merely quick (a page and its metrics at once) from ever
	// seeing an error.
	MaxWait time.Duration
}

// maxRateClients bounds the clients remembered; past it, those idle for a
// minute are forgotten (their buckets are full again by then anyway).
const maxRateClients = 1024

// Rate limits requests per client (by IP address, IPv6 by /64).
type Rate struct {
	lim     RateLimits
	mu      sync.Mutex
	clients map[string]*rateClient
	refused atomic.Int64
}

type rateClient struct {
	l    *rate.Limiter
	seen time.Time
}

// NewRate returns a rate limiter; Wrap puts it in front of a handler.
func NewRate(lim RateLimits) *Rate {
	return &Rate{lim: lim, clients: map[string]*rateClient{}}
}

// Refused counts requests refused with 429.
func (rl *Rate) Refused() int64 { return rl.refused.Load() }

// Wrap applies the limit in front of h.
func (rl *Rate) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		res := rl.limiter(clientOf(r.RemoteAddr), now).ReserveN(now, 1)
		delay := res.DelayFrom(now)
		if !res.OK() || delay > rl.lim.MaxWait {
			res.CancelAt(now)
			rl.refused.Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(delay, time.Second).Seconds()))))
			http.Error(w, fmt.Sprintf("too many requests: at most %g a second from one client; try again later", rl.lim.PerSecond), http.StatusTooManyRequests)
			return
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				res.Cancel()
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (rl *Rate) limiter(client string, now time.Time) *rate.Limiter {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	c, ok := rl.clients[client]
	if !ok {
		if len(rl.clients) >= maxRateClients {
			for k, o := range rl.clients {
				if now.Sub(o.seen) > time.Minute {
					delete(rl.clients, k)
				}
			}
		}
		c = &rateClient{l: rate.NewLimiter(rate.Limit(rl.lim.PerSecond), rl.lim.Burst)}
		if len(rl.clients) < maxRateClients {
			rl.clients[client] = c
		}
	}
	c.seen = now
	return c.l
}
