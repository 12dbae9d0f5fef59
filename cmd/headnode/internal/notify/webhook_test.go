package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type request struct {
	method, path, body string
	header             http.Header
}

func server(t *testing.T, code int, header map[string]string) (*httptest.Server, chan request) {
	got := make(chan request, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- request{r.Method, r.URL.Path, string(b), r.Header.Clone()}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		io.WriteString(w, "answer\n")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

var ev = Event{
	ID: "18f-3", Time: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC), Head: "pi", Kind: KindNode, Subject: "p2",
	State: "unreachable", Previous: "up", Severity: "warning", Summary: "pi: node p2 is powered on but does not answer",
}

func TestWebhookJSON(t *testing.T) {
	srv, got := server(t, http.StatusNoContent, nil)
	w := &Webhook{URL: srv.URL + "/hook", Format: "json", Token: "tk_abc", UserAgent: "headnode/test"}
	if err := w.Post(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != http.MethodPost || r.path != "/hook" || r.header.Get("Content-Type") != "application/json" ||
		r.header.Get("Authorization") != "Bearer tk_abc" || r.header.Get("User-Agent") != "headnode/test" {
		t.Errorf("request %s %s %v", r.method, r.path, r.header)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": "18f-3", "time": "2026-05-06T07:08:09Z", "head": "pi", "kind": "node", "subject": "p2",
		"state": "unreachable", "previous": "up", "severity": "warning", "summary": "pi: node p2 is powered on but does not answer",
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// ntfy's publish format: the message is the body, title, priority and
// tags are headers.
func TestWebhookNtfy(t *testing.T) {
	srv, got := server(t, http.StatusOK, nil)
	w := &Webhook{URL: srv.URL + "/my-cluster", Format: "ntfy", UserAgent: "headnode/test"}
	e := ev
	e.Head, e.Dropped = "pi-ä", 3
	if err := w.Post(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	r := <-got
	wantBody := "pi: node p2 is powered on but does not answer\n(3 earlier notifications were dropped: too many at once)"
	if r.method != http.MethodPost || r.path != "/my-cluster" || r.body != wantBody {
		t.Errorf("%s %s body %q", r.method, r.path, r.body)
	}
	for k, v := range map[string]string{"Title": "headnode pi-?", "Priority": "3", "Tags": "warning", "Authorization": ""} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

// 5xx and 429 are retried (429 and 503 with their Retry-After); other
// 4xx are refusals; a dead server is retried.
func TestWebhookErrors(t *testing.T) {
	for _, tc := range []struct {
		code      int
		header    map[string]string
		permanent bool
		after     time.Duration
	}{
		{http.StatusInternalServerError, nil, false, 0},
		{http.StatusTooManyRequests, map[string]string{"Retry-After": "30"}, false, 30 * time.Second},
		{http.StatusServiceUnavailable, nil, false, 0},
		{http.StatusRequestTimeout, nil, false, 0},
		{http.StatusUnauthorized, nil, true, 0},
		{http.StatusNotFound, nil, true, 0},
	} {
		srv, _ := server(t, tc.code, tc.header)
		err := (&Webhook{URL: srv.URL, Format: "json"}).Post(context.Background(), ev)
		var perm *PermanentError
		var ra *retryAfterError
		if err == nil || errors.As(err, &perm) != tc.permanent || (tc.after > 0 && (!errors.As(err, &ra) || ra.after != tc.after)) {
			t.Errorf("%d: %v (permanent %v, want %v)", tc.code, err, errors.As(err, &perm), tc.permanent)
		}
	}
	srv, _ := server(t, 200, nil)
	srv.Close()
	err := (&Webhook{URL: srv.URL, Format: "json"}).Post(context.Background(), ev)
	var perm *PermanentError
	if err == nil || errors.As(err, &perm) {
		t.Errorf("closed server: %v, want a retryable error", err)
	}
}
