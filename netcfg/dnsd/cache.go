package dnsd

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// cache keeps upstream answers until their TTL runs out, at most max of
// them (least recently used go first), so memory stays bounded whatever
// names the nodes ask for.
type cache struct {
	mu      sync.Mutex
	max     int
	maxTTL  time.Duration
	entries map[cacheKey]*list.Element
	lru     *list.List // front: most recently used
	hits    int64
	misses  int64
}

type cacheKey struct {
	name   string
	qtype  uint16
	do, cd bool
	qclass uint16
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // the answer as received, its TTLs as at stored
	stored  time.Time
	expires time.Time
}

func newCache(max int, maxTTL time.Duration) *cache {
	return &cache{max: max, maxTTL: maxTTL, entries: map[cacheKey]*list.Element{}, lru: list.New()}
}

func keyOf(q dns.Question, do, cd bool) cacheKey {
	return cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do, cd: cd}
}

// get returns a copy of the cached answer with its TTLs counted down to
// now, or nil.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		c.misses++
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, k)
		c.misses++
		return nil
	}
	c.lru.MoveToFront(el)
	c.hits++
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

// put stores an upstream answer for as long as its TTLs allow: the
// smallest TTL of its records (for a negative answer the SOA's, bounded by
// its minimum, RFC 2308 section 5), capped at maxTTL. Answers other than
// NOERROR and NXDOMAIN, and truncated ones, are not kept.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return
	}
	ttl, ok := msgTTL(m)
	if !ok {
		return
	}
	d := min(time.Duration(ttl)*time.Second, c.maxTTL)
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.lru.Remove(el)
		delete(c.entries, k)
	}
	for c.lru.Len() >= c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, msg: m.Copy(), stored: now, expires: now.Add(d)})
}

// msgTTL is how long m may be kept; false when it carries nothing to go
// by (a negative answer without a SOA is not cached, RFC 2308 section 5).
func msgTTL(m *dns.Msg) (uint32, bool) {
	var ttl uint32
	found := false
	take := func(t uint32) {
		if !found || t < ttl {
			ttl, found = t, true
		}
	}
	for _, rr := range m.Answer {
		take(rr.Header().Ttl)
	}
	if len(m.Answer) == 0 {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				take(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
	}
	return ttl, found
}

// flush empties the cache: the upstreams changed, and what the old ones
// said may not hold on the new network.
func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.lru.Init()
}

// CacheStats describes the cache.
type CacheStats struct {
	Entries  int   `json:"entries"`
	Capacity int   `json:"capacity"`
	Hits     int64 `json:"hits"`
	Misses   int64 `json:"misses"`
}

func (c *cache) stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Entries: c.lru.Len(), Capacity: c.max, Hits: c.hits, Misses: c.misses}
}
