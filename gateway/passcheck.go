package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// The members of a passed-through request the gateway reads to police it
// (to count, reserve, admit and route it): each must be given once and in
// its own case. encoding/json, with which the gateway reads them, matches
// member names without regard to case and keeps the last of two; a
// provider may match them exactly, or keep the first: a request that
// names one twice, or in another case ("Max_Output_Tokens" after
// "max_output_tokens"), could be policed as one request and served as
// another — refused instead.
var (
	responsesMembers  = []string{"model", "input", "instructions", "tools", "max_output_tokens", "max_tool_calls", "previous_response_id", "conversation", "service_tier", "stream", "background", "temperature", "prompt", "text"}
	embeddingsMembers = []string{"model", "input"}
)

// checkMembers returns an OpenAI-shaped 400 when body, a JSON object,
// names one of members twice or in another case; nil otherwise (a body
// that is not a JSON object is the upstream's to refuse).
func checkMembers(body []byte, members []string) *apiError {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool, len(members))
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil
		}
		name, _ := t.(string)
		for _, m := range members {
			if !strings.EqualFold(name, m) {
				continue
			}
			switch {
			case name != m:
				return memberError(name, "the member is "+strconv.Quote(m)+" in another case, which some servers read as "+strconv.Quote(m)+": give it once, as "+strconv.Quote(m))
			case seen[m]:
				return memberError(name, "the member is given twice; each may appear once")
			}
			seen[m] = true
		}
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

func memberError(param, why string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", NoRetry: true,
		Message: "tokenwise/gateway: " + strconv.Quote(param) + ": " + why}
}
