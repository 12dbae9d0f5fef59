// Package guard bounds what the clients of the daemon's two listeners (the
// read-only HTTP listener on the network, the control socket) can take
// from it, so that no client, broken or hostile, can exhaust the head
// node's memory or hold the daemon's attention from the others:
//
//   - Listener caps open connections, in all and per client (an IP
//     address, or the user at the other end of a unix socket); one over
//     the cap is closed as soon as it is accepted.
//   - Bodies caps a request body's size and the time to send it.
//   - Rate makes each client's requests wait their turn past a steady
//     rate, and refuses those that would wait too long.
//   - Hosts answers only requests naming one of the daemon's own hosts
//     (DNS rebinding: a page from evil.example whose name now points at
//     127.0.0.1 still sends Host: evil.example).
//
// Header sizes and header, idle and write times are net/http's own
// (http.Server's MaxHeaderBytes and timeouts); the daemon sets them
// beside these.
package guard
