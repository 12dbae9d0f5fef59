package guard

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ConnLimits bound the connections a Listener keeps open.
type ConnLimits struct {
	// Total caps the open connections of every client together.
	Total int
	// PerClient caps those of one client.
	PerClient int
	// Client names the client at the other end of a connection:
	// TCPClient or UnixPeer.
	Client func(net.Conn) string
	// Refused, when set, counts the connections refused (so that a count
	// outlives the listener, which a reload may replace).
	Refused *atomic.Int64
}

// Listener is a net.Listener that keeps at most ConnLimits connections
// open. A connection over a cap is closed as soon as it is accepted (not
// left waiting in the kernel's backlog, where it would hold up the
// clients behind it) and counted in Refused. Every connection it handed
// out, hijacked ones too, can be closed at once with CloseConns.
type Listener struct {
	net.Listener
	lim ConnLimits

	mu      sync.Mutex
	open    map[*conn]struct{}
	clients map[string]int

	refused *atomic.Int64
}

// Listen caps the connections of l.
func Listen(l net.Listener, lim ConnLimits) *Listener {
	refused := lim.Refused
	if refused == nil {
		refused = new(atomic.Int64)
	}
	return &Listener{Listener: l, lim: lim, open: map[*conn]struct{}{}, clients: map[string]int{}, refused: refused}
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := l.lim.Client(c)
		l.mu.Lock()
		if len(l.open) >= l.lim.Total || l.clients[client] >= l.lim.PerClient {
			l.mu.Unlock()
			l.refused.Add(1)
			refuse(c)
			continue
		}
		gc := &conn{Conn: c, l: l, client: client}
		l.open[gc] = struct{}{}
		l.clients[client]++
		l.mu.Unlock()
		return gc, nil
	}
}

// refuse closes c at once; a TCP connection with a reset, so that no
// FIN_WAIT or TIME_WAIT state stays behind for a client that floods.
func refuse(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Refused counts the connections closed for being over a cap.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Open returns the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// CloseConns closes every open connection, including those a handler
// hijacked (http.Server.Close does not know those).
func (l *Listener) CloseConns() {
	l.mu.Lock()
	conns := make([]*conn, 0, len(l.open))
	for c := range l.open {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type conn struct {
	net.Conn
	l      *Listener
	client string
	once   sync.Once
}

// Close frees the connection's place before closing it, so that a client
// that sees the close may connect again at once.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.open, c)
		if c.l.clients[c.client]--; c.l.clients[c.client] <= 0 {
			delete(c.l.clients, c.client)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection after an error
// reply, as it does with a bare TCP or unix connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// TCPClient names a TCP client by its IP address; IPv6 clients by their
// /64, since one host commonly holds a whole /64 to pick addresses from.
func TCPClient(c net.Conn) string { return clientOf(c.RemoteAddr().String()) }

// clientOf is TCPClient for an address "ip:port" as net/http's
// Request.RemoteAddr holds it.
func clientOf(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// UnixPeer names the client of a unix socket connection by its user ID
// (SO_PEERCRED: the credentials of the process that connected), "uid
// N"; "" when the kernel does not say.
func UnixPeer(c net.Conn) string {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return ""
	}
	return "uid " + strconv.Itoa(int(cred.Uid))
}
