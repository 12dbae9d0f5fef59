package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook posts events to one URL.
//
// Format "json" POSTs the Event as a JSON object (Content-Type
// application/json). Format "ntfy" publishes in ntfy's documented format
// (docs.ntfy.sh/publish, from binwiederhier/ntfy docs/publish.md): a POST
// to the topic's URL whose body is the message, with the Title, Priority
// (1-5) and Tags headers. A token, when set, goes in "Authorization:
// Bearer", which is how ntfy takes access tokens.
type Webhook struct {
	URL       string
	Format    string // "json" or "ntfy"
	Token     string
	UserAgent string
	Client    *http.Client
}

// attemptTimeout bounds one delivery attempt.
const attemptTimeout = 10 * time.Second

// Post delivers ev once.
func (w *Webhook) Post(ctx context.Context, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := w.request(ctx, ev)
	if err != nil {
		return &PermanentError{Msg: err.Error()}
	}
	if w.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.Token)
	}
	req.Header.Set("User-Agent", w.UserAgent)
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch code := resp.StatusCode; {
	case code/100 == 2:
		return nil
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &retryAfterError{err: err, after: time.Duration(secs) * time.Second}
	case code == http.StatusRequestTimeout || code/100 == 5:
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	default:
		return &PermanentError{Msg: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))}
	}
}

func (w *Webhook) request(ctx context.Context, ev Event) (*http.Request, error) {
	if w.Format == "ntfy" {
		msg := ev.Summary
		if ev.Dropped > 0 {
			msg += fmt.Sprintf("\n(%d earlier notifications were dropped: too many at once)", ev.Dropped)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, strings.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		req.Header.Set("Title", headerText("headnode "+ev.Head))
		req.Header.Set("Priority", ntfyPriority[ev.Severity])
		req.Header.Set("Tags", ntfyTags[ev.Severity])
		return req, nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// ntfy priorities (1 min .. 5 max) and tags (emoji short codes ntfy shows
// in front of the title) by severity.
var (
	ntfyPriority = map[string]string{"critical": "4", "warning": "3", "ok": "2"}
	ntfyTags     = map[string]string{"critical": "rotating_light", "warning": "warning", "ok": "white_check_mark"}
)

// headerText keeps a header value to printable ASCII.
func headerText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
