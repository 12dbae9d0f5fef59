package daemon

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/headnode/headnode/cmd/headnode/internal/config"
	"github.com/headnode/headnode/cmd/headnode/internal/notify"
)

// The notify part: webhooks told about health changes and unreachable
// nodes. It reads the published status like any watcher and never sends
// the loop anything, so a slow or dead receiver cannot hold the daemon up.

func notifyChanged(old, new *config.Config) bool {
	return !config.NotifyEqual(old.Notify, new.Notify) || old.Daemon != new.Daemon
}

func (d *Daemon) startNotify(parent context.Context, cfg *config.Config) (stop func()) {
	n := cfg.Notify
	if len(n.Webhooks) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(parent)
	log := d.log.With("part", "notify")
	host, _ := os.Hostname()
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 1}}
	var senders []*notify.Sender
	var urls []string
	for i, w := range n.Webhooks {
		// Only the host goes to the log: an ntfy topic in the path is
		// as good as a password.
		name := "webhook[" + strconv.Itoa(i) + "]"
		if u, err := url.Parse(w.URL); err == nil {
			name += " " + u.Host
		}
		var token string
		if w.TokenFile != "" {
			tok, err := config.ReadSecretFile(w.TokenFile)
			if err != nil {
				log.Error("webhook not used: its token file is refused", "webhook", name, "err", err)
				continue
			}
			token = tok
		}
		p := &notify.Webhook{URL: w.URL, Format: w.Format, Token: token, UserAgent: "headnode/" + d.opts.Version, Client: client}
		senders = append(senders, notify.NewSender(name, p, n.Burst, n.Interval.Duration, n.RetryMax.Duration, log))
		urls = append(urls, w.URL)
	}
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Go(func() { s.Run(ctx) })
	}
	o := notify.Options{
		Head: host, Settle: n.Settle.Duration, Senders: senders, URLs: urls, Log: log,
		MemoryFile: filepath.Join(cfg.Daemon.StateDir, "notify.json"),
	}
	wg.Go(func() { notify.Follow(ctx, d.current, o) })
	return func() {
		cancel()
		wg.Wait()
		// What a receiver has not taken yet goes out after the restart
		// (or the reload) instead of being lost.
		if err := notify.SaveUndelivered(o); err != nil {
			log.Warn("notifications not delivered yet are lost", "err", err)
		}
	}
}
