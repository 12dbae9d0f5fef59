package api

import (
	"encoding/json"
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
