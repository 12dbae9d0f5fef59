package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Reply answers a control or status request with v as its JSON body: the
// daemon's side of what Client.Do decodes.
func Reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ReplyError answers with err in an Error body; Client.Do returns it as a
// *RequestError.
func ReplyError(w http.ResponseWriter, code int, err error) {
	Reply(w, code, Error{Error: err.Error()})
}

// MaxRequestBody is the largest request body the control socket takes:
// requests are a few node names or a mode, well under a kilobyte.
const MaxRequestBody = 64 << 10

// ReadRequest decodes a request's JSON body into v, strictly: exactly one
// JSON value, and no field that v does not have (a misspelt field is an
// error, not silently ignored). On failure it answers the request itself,
// with hint (an example of a valid body) after the reason, and returns
// false. A body over MaxRequestBody is answered 413.
func ReadRequest(w http.ResponseWriter, r *http.Request, v any, hint string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxRequestBody+1))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &mbe) || dec.InputOffset() > MaxRequestBody:
		ReplyError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body too large: at most %d KiB; %s", MaxRequestBody>>10, hint))
	case errors.Is(err, io.EOF):
		ReplyError(w, http.StatusBadRequest, fmt.Errorf("empty request body; %s", hint))
	default:
		ReplyError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %v; %s", err, hint))
	}
	return false
}
