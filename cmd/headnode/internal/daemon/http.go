package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/web"
)

func httpChanged(old, new *config.Config) bool {
	return !slices.Equal(old.HTTP.Listen, new.HTTP.Listen) || !slices.Equal(old.HTTP.Hosts, new.HTTP.Hosts) ||
		old.Network.ClusterAddress != new.Network.ClusterAddress || old.Prometheus != new.Prometheus ||
		old.DNSOn() != new.DNSOn() || old.DNS.Domain != new.DNS.Domain
}

// startHTTP serves the read-only status page, metrics, health check and
// Prometheus service discovery on every [http] listen address. Only
// read-only handlers are mounted here: changing state needs the control
// socket.
func (d *Daemon) startHTTP(parent context.Context, cfg *config.Config) (stop func()) {
	ctx, cancel := context.WithCancel(parent)
	d.setHTTPHosts(cfg)
	current := func() *api.Status { s, _ := d.current(); return s }
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.Handle("GET "+web.TargetsPath, web.Targets(current, cfg.Prometheus.NodeExporterPort, host))
	mux.Handle("/", web.Handler(current, busMetrics{d.hw}, limitMetrics{&d.limits}))
	var wg sync.WaitGroup
	for _, l := range cfg.HTTP.Listen {
		addr, err := resolveListen(l, cfg)
		if err != nil {
			d.log.Warn("not serving the status page there", "listen", l, "err", err)
			continue
		}
		wg.Go(func() { d.serveHTTP(ctx, addr, mux) })
	}
	return func() { cancel(); wg.Wait() }
}

// resolveListen turns "cluster:PORT" into the cluster address.
func resolveListen(l string, cfg *config.Config) (string, error) {
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return "", err
	}
	if host != config.ClusterListenHost {
		return l, nil
	}
	p, ok := cfg.Network.ClusterPrefix()
	if !ok {
		return "", errors.New("network.cluster_address is empty, so there is no cluster address to listen on")
	}
	return net.JoinHostPort(p.Addr().String(), port), nil
}

// serveHTTP listens on addr until ctx ends, retrying while the port is
// taken. IP_FREEBIND lets it bind the cluster address before the interface
// has it (USB Ethernet appears late); it starts answering once it does.
func (d *Daemon) serveHTTP(ctx context.Context, addr string, h http.Handler) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if strings.HasPrefix(network, "tcp6") {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, ipv6Freebind, 1)
			} else {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_FREEBIND, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	backoff := time.Second
	for ctx.Err() == nil {
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			d.log.Warn("status page listener failed; retrying", "listen", addr, "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		d.log.Info("serving the status page", "listen", addr)
		gl, srv := d.guardHTTP(l, h)
		stop := context.AfterFunc(ctx, func() { srv.Close() })
		err = srv.Serve(gl)
		stop()
		if ctx.Err() == nil {
			d.log.Warn("status page listener stopped; restarting", "listen", addr, "err", err)
		}
	}
}

// ipv6Freebind is IPV6_FREEBIND (linux/in6.h), absent from package syscall.
const ipv6Freebind = 78
