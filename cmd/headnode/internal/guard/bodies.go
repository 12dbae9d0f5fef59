package guard

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// BodyLimits bound request bodies.
type BodyLimits struct {
	// Max is the largest body accepted; a handler reading past it gets an
	// *http.MaxBytesError, and net/http closes the connection after the
	// reply.
	Max int64
	// Timeout is how long a client has to send the whole body, from the
	// end of its headers.
	Timeout time.Duration
}

// Bodies applies lim to every request that has a body. Requests without
// one (every GET, and so the long-lived streams: status watches, console
// logs followed, console sessions, which switch protocols) are passed on
// as they are: after their headers net/http reads nothing more than the
// next request, so they may last as long as their handlers run.
func Bodies(h http.Handler, lim BodyLimits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// The deadline also bounds what net/http discards of a body the
		// handler did not read.
		rc.SetReadDeadline(time.Now().Add(lim.Timeout))
		r.Body = &body{ReadCloser: http.MaxBytesReader(w, r.Body, lim.Max), rc: rc}
		h.ServeHTTP(w, r)
	})
}

// body lifts the read deadline once the body has been read, so that a
// long request (powering nodes on one after another) is not cut off: the
// deadline is for sending the body, not for the answer.
type body struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
