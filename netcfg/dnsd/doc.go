// Package dnsd is the cluster's DNS server: it answers A and PTR queries
// for the nodes, the DHCP leases and the head under a local domain, and
// forwards everything else to the uplink's current resolvers through a
// bounded cache. It answers only the cluster subnet and loopback.
//
// The wire format is github.com/miekg/dns's. What the server does follows:
//
//   - RFC 1034/1035: the query, its answer, NXDOMAIN and the authority
//     section's SOA for answers about the local zone; RFC 2308: negative
//     answers carry the SOA, whose minimum is their TTL (kept short here,
//     so a new lease is seen at once by a client that asked before).
//   - RFC 8375: home.arpa is for home networks; the default domain is a
//     subdomain of it (cluster.home.arpa), never forwarded.
//   - RFC 6891 (EDNS): a UDP answer fits the client's advertised size
//     (512 bytes without EDNS, at most 1232, the DNS flag day 2020 value);
//     RFC 1035 4.2.1 and RFC 7766: a UDP answer that does not fit is
//     truncated with TC set and the client retries over TCP, which this
//     server also serves (answers of up to 64 KiB).
//   - RFC 8482: ANY is answered with a small synthesized HINFO record (for
//     local names, their A record), never with everything the name has.
//   - RFC 2181 5.2 and 8767's spirit: cached answers count their TTL down
//     and expire; TTLs are capped (MaxTTL) so the cache follows a move to
//     another network, and the cache is emptied when the upstreams change.
//   - RFC 5452: each upstream query has a random ID, and only an answer
//     from the server asked, with that ID and question, is taken (the
//     library's client checks both).
package dnsd
