// Package api is the contract between the daemon and its clients: the JSON
// shapes of the control API (HTTP over the unix control socket) and of the
// read-only status endpoints, and a client for the socket.
package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// Status is everything the daemon knows, as served by GET /v1/status and
// by the status page.
type Status struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Ready   bool      `json:"ready"`
	Health  Health    `json:"health"`
	Config  Config    `json:"config"`
	NAT     NAT       `json:"nat"`
	Uplink  Link      `json:"uplink"`
	Cluster Link      `json:"cluster"`
	// Roles says which interface is which side, and why.
	Roles *Roles `json:"roles,omitempty"`
	DHCP  DHCP   `json:"dhcp"`
	// Subnet is how the cluster subnet was chosen (subnet.go).
	Subnet Subnet `json:"subnet"`
	DNS    DNS    `json:"dns"`
	// Netlink counts recoveries of the interface watcher.
	Netlink Netlink `json:"netlink"`
	Bridge  *Bridge `json:"bridge,omitempty"`
	Power   Power   `json:"power"`
	Display Display `json:"display"`
	// Consoles are the nodes' serial consoles.
	Consoles Consoles `json:"consoles"`
}

// Health is the cluster's overall state, the one thing the LED shows.
type Health struct {
	// State is "starting", "ok", "degraded", "failed" or "stopped".
	State string `json:"state"`
	// Class numbers a failure for the LED's blink code: 1 config, 2 NAT,
	// 3 board/bus, 4 uplink. 0 when not failed.
	Class int `json:"class,omitempty"`
	// Reasons, most important first, in words for the LCD and the page.
	Reasons []string `json:"reasons,omitempty"`
}

// Health states.
const (
	HealthStarting = "starting"
	HealthOK       = "ok"
	HealthDegraded = "degraded"
	HealthFailed   = "failed"
	HealthStopped  = "stopped"
)

// Config reports which configuration is running and how the last reload
// went.
type Config struct {
	Path          string    `json:"path"`
	LoadedAt      time.Time `json:"loaded_at"`
	ReloadOK      bool      `json:"reload_ok"`
	ReloadError   string    `json:"reload_error,omitempty"`
	LastReloadAt  time.Time `json:"last_reload_at,omitzero"`
	ReloadsFailed int64     `json:"reloads_failed,omitempty"`
	// RestartNeeded are the keys changed in the file that take effect
	// only when the daemon restarts; until then it runs with what it
	// started with.
	RestartNeeded []string `json:"restart_needed,omitempty"`
	// NotApplied are settings the daemon could not put into effect, one
	// line each naming the key and why (a trace file that cannot be
	// opened, a control socket path that holds a file).
	NotApplied []string `json:"not_applied,omitempty"`
}

// NAT reports forwarding and our firewall rules.
type NAT struct {
	// State is "ok", "applying", "waiting", "failed" or "cleared".
	State string `json:"state"`
	// Backend is the firewall backend: "iptables-nft", "iptables-legacy"
	// or "nftables-netlink" (nf_tables programmed over netlink).
	Backend      string    `json:"backend,omitempty"`
	Forwarding   bool      `json:"forwarding"`
	RulesPresent bool      `json:"rules_present"`
	Missing      []string  `json:"missing,omitempty"`
	Policy       string    `json:"forward_policy,omitempty"`
	Subnet       string    `json:"subnet,omitempty"`
	Repairs      int64     `json:"repairs"`
	LastRepair   time.Time `json:"last_repair,omitzero"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	Error        string    `json:"error,omitempty"`
	Waiting      []string  `json:"waiting,omitempty"`
	// Daemon is false when this report was made by the CLI itself because
	// no daemon was running (then Repairs is unknown).
	Daemon bool `json:"daemon"`
}

// NAT states.
const (
	NATOK       = "ok"
	NATApplying = "applying"
	NATWaiting  = "waiting"
	NATFailed   = "failed"
	NATCleared  = "cleared"
	// NATDisabled: [network] nat = false; another tool owns forwarding.
	NATDisabled = "disabled"
)

// Link is one network interface as users see it.
type Link struct {
	Interface string `json:"interface"`
	Exists    bool   `json:"exists"`
	Up        bool   `json:"up"`
	Carrier   bool   `json:"carrier"`
	// Address is the primary IPv4 address with prefix, "" when none.
	Address string   `json:"address,omitempty"`
	IPv6    []string `json:"ipv6,omitempty"`
	// Since is when Address last changed.
	Since time.Time `json:"since,omitzero"`
	// Changes counts address changes since the daemon started.
	Changes int64 `json:"changes"`
}

// Netlink reports the interface watcher's health.
type Netlink struct {
	// Resubscribes counts netlink subscriptions that died (for example
	// on a receive-buffer overflow during an event burst) and were
	// renewed, with a full relist so no change was missed.
	Resubscribes int64 `json:"resubscribes"`
}

// Changes is the answer to a state-changing request.
type Changes struct {
	Changes []string `json:"changes"`
	Waiting []string `json:"waiting,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// ErrDaemonNotRunning means nothing answers on the control socket.
var ErrDaemonNotRunning = errors.New("the headnode daemon is not running")

// RequestError is an error answer from the daemon. BadInput is true for
// 4xx answers: the request was refused and nothing changed.
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

// BadInput reports whether the daemon refused the request as invalid.
func (e *RequestError) BadInput() bool { return e.Status >= 400 && e.Status < 500 }

// Client talks to the daemon over its control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr}}
}

// Do sends a request and decodes a JSON answer into out (unless nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://headnode"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("daemon answered %s", resp.Status)
		}
		return &RequestError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *Client) dialError(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (no control socket at %s)", ErrDaemonNotRunning, c.socket)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot open the control socket %s: permission denied (run as root, or as a member of the socket's group: sudo adduser $USER headnode, then log in again)", c.socket)
	}
	return err
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Watch streams status snapshots (one per change, the current one first)
// to fn until ctx ends, fn returns false, or the daemon goes away.
func (c *Client) Watch(ctx context.Context, fn func(*Status) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://headnode/v1/watch", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var s Status
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return err
		}
		if !fn(&s) {
			return nil
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}
