package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Prometheus configures the service discovery endpoint of the read-only
// listener (/prometheus/targets), which lists a node_exporter target for
// every node and for the head.
type Prometheus struct {
	// NodeExporterPort is where node_exporter listens on the nodes and
	// on the head (Debian's prometheus-node-exporter: 9100).
	NodeExporterPort int `toml:"node_exporter_port"`
}

// Notify configures notifications sent without Prometheus: webhooks told
// about health changes and about nodes that stop answering or answer again.
type Notify struct {
	Webhooks []Webhook `toml:"webhook"`
	// Burst messages may go out at once to one webhook; after that one
	// per Interval. Messages beyond wait their turn.
	Burst    int      `toml:"burst"`
	Interval Duration `toml:"interval"`
	// RetryMax caps the doubling wait between delivery attempts.
	RetryMax Duration `toml:"retry_max"`
	// Settle is how long a health state must last to be told, so that a
	// blip (and the daemon's own start) tells nothing.
	Settle Duration `toml:"settle"`
}

// Webhook is one notification receiver.
type Webhook struct {
	URL string `toml:"url"`
	// Format is "json" (headnode's JSON object) or "ntfy" (ntfy's publish
	// format: the URL is the topic, the body the message).
	Format string `toml:"format"`
	// TokenFile holds an access token sent as "Authorization: Bearer"; it
	// must be readable by root only.
	TokenFile string `toml:"token_file"`
}

// Webhook formats.
const (
	WebhookJSON = "json"
	WebhookNtfy = "ntfy"
)

func defaultPrometheus() Prometheus { return Prometheus{NodeExporterPort: 9100} }

func defaultNotify() Notify {
	return Notify{
		Webhooks: []Webhook{},
		Burst:    5,
		Interval: Duration{Duration: time.Minute},
		RetryMax: Duration{Duration: 5 * time.Minute},
		Settle:   Duration{Duration: 10 * time.Second},
	}
}

// NotifyEqual reports whether two [notify] sections are the same.
func NotifyEqual(a, b Notify) bool {
	return a.Burst == b.Burst && a.Interval == b.Interval && a.RetryMax == b.RetryMax && a.Settle == b.Settle && slices.Equal(a.Webhooks, b.Webhooks)
}

func (c *Config) validateMonitor(bad badFunc) {
	if p := c.Prometheus.NodeExporterPort; p < 1 || p > 65535 {
		bad("prometheus.node_exporter_port", "%d is not a TCP port; use 1-65535 (node_exporter's is 9100)", p)
	}
	n := &c.Notify
	if n.Burst < 1 || n.Burst > 1000 {
		bad("notify.burst", "%d is out of range; use 1 to 1000", n.Burst)
	}
	if msg := n.Interval.check(time.Second, 24*time.Hour); msg != "" {
		bad("notify.interval", "%s", msg)
	}
	if msg := n.RetryMax.check(time.Second, 24*time.Hour); msg != "" {
		bad("notify.retry_max", "%s", msg)
	}
	if msg := n.Settle.check(0, 10*time.Minute); msg != "" {
		bad("notify.settle", "%s", msg)
	}
	for i := range n.Webhooks {
		w := &n.Webhooks[i]
		key := fmt.Sprintf("notify.webhook[%d]", i)
		// An omitted format is the generic JSON body.
		if w.Format == "" {
			w.Format = WebhookJSON
		}
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".url", "%q is not an http:// or https:// URL, e.g. \"https://ntfy.sh/my-cluster\"", w.URL)
		} else if u.User != nil {
			bad(key+".url", "%q carries a password; put the token in token_file instead", u.Redacted())
		}
		switch w.Format {
		case WebhookJSON, WebhookNtfy:
		default:
			bad(key+".format", "%q is not valid; use \"json\" or \"ntfy\"", w.Format)
		}
		if w.TokenFile != "" {
			if !strings.HasPrefix(w.TokenFile, "/") {
				bad(key+".token_file", "%q is not an absolute path, e.g. \"/etc/headnode/ntfy.token\"", w.TokenFile)
			} else if err := checkSecretFile(w.TokenFile); err != nil && !errors.Is(err, fs.ErrPermission) {
				// Permission denied: `config check` run by a user cannot
				// look; the daemon (root) checks again when it reads it.
				bad(key+".token_file", "%v", err)
			}
		}
	}
}

// ReadSecretFile returns the first line of a file that only root can read,
// and refuses one that anybody else could read: a token in a file others
// can read is no longer a secret.
func ReadSecretFile(path string) (string, error) {
	if err := checkSecretFile(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("%s is empty; write the token on its first line", path)
	}
	return tok, nil
}

// checkSecretFile says why path is not a file only root can read.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist; write the token into it and make it root's alone (chmod 600)", path)
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm()&0o044 != 0 || (ok && st.Uid != 0) {
		owner := ""
		if ok {
			owner = fmt.Sprintf(", owner uid %d", st.Uid)
		}
		return fmt.Errorf("%s can be read by others than root (mode %04o%s); make it root's alone: sudo chown root:root %s && sudo chmod 600 %s", path, fi.Mode().Perm(), owner, path, path)
	}
	return nil
}
