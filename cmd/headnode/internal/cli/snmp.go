package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/snmp"
)

func runSNMP(ctx context.Context, env *Env) error {
	fs := flag.NewFlagSet("snmp", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "")
	if err := fs.Parse(env.Args); err != nil {
		return usagef("snmp: %v; the only flag is --url URL", err)
	}
	if fs.NArg() > 0 {
		return usagef("snmp takes no arguments, got %q", fs.Arg(0))
	}
	if *url == "" {
		cfg, err := env.loadConfig()
		if err != nil {
			return err
		}
		if *url, err = statusPageURL(cfg); err != nil {
			return err
		}
	}
	src := &statusSource{url: *url, hc: &http.Client{Timeout: time.Second}}
	return snmp.Serve(os.Stdin, env.Stdout, src.vars)
}

// statusPageURL is where the configuration's daemon serves its status
// page: the first [http] listen address, the cluster address for
// "cluster:PORT", loopback for an unspecified address.
func statusPageURL(cfg *config.Config) (string, error) {
	for _, l := range cfg.HTTP.Listen {
		host, port, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		if host == config.ClusterListenHost {
			p, ok := cfg.Network.ClusterPrefix()
			if !ok {
				continue
			}
			host = p.Addr().String()
		}
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			host = "127.0.0.1"
			if a.Is6() {
				host = "::1"
			}
		}
		return "http://" + net.JoinHostPort(host, port) + "/", nil
	}
	return "", usagef("the configuration has no [http] listen address to read the status from; give --url http://HOST:PORT/")
}

// statusSource fetches the status at most once a second: a walk asks for
// every object in a row.
type statusSource struct {
	url string
	hc  *http.Client

	mu   sync.Mutex
	at   time.Time
	last []snmp.Var
}

func (s *statusSource) vars() []snmp.Var {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && time.Since(s.at) < time.Second {
		return s.last
	}
	st, err := s.fetch()
	s.last, s.at = snmp.Vars(st, err), time.Now()
	return s.last
}

func (s *statusSource) fetch() (*api.Status, error) {
	req, err := http.NewRequest(http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return nil, fmt.Errorf("the headnode daemon does not answer at %s (%v)", s.url, op.Err)
		}
		return nil, fmt.Errorf("the headnode daemon does not answer at %s (%v)", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil, fmt.Errorf("%s answered %s, not the JSON status", s.url, resp.Status)
	}
	var st api.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: %v", s.url, err)
	}
	return &st, nil
}
