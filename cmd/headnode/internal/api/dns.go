package api

// DNS is the state of the DNS server for the nodes.
type DNS struct {
	// State is "off", "waiting", "serving" or "failed".
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Domain holds the local names (p1.cluster.home.arpa).
	Domain    string   `json:"domain,omitempty"`
	Listening []string `json:"listening,omitempty"`
	// Upstreams are the resolvers forwarded to now (the uplink's).
	Upstreams []string `json:"upstreams,omitempty"`
	// Records counts the local names served.
	Records int      `json:"records"`
	Cache   DNSCache `json:"cache"`
	// Queries counts queries by outcome: local, cache, upstream,
	// servfail, refused, rate-limited, malformed, not-implemented.
	Queries        map[string]int64 `json:"queries,omitempty"`
	UpstreamErrors int64            `json:"upstream_errors"`
}

// DNSCache describes the cache of upstream answers.
type DNSCache struct {
	Entries  int   `json:"entries"`
	Capacity int   `json:"capacity"`
	Hits     int64 `json:"hits"`
	Misses   int64 `json:"misses"`
}

// DNS states.
const (
	DNSOff     = "off"
	DNSWaiting = "waiting"
	DNSServing = "serving"
	DNSFailed  = "failed"
)
