package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// fuzzResponsesPolicies: devops has a team budget it never reaches, a
// cache, a fallback chain and a cascade, so that whatever an upstream
// answers goes through the chain (an error answer is retried, then sent
// to the fallback model, which gets the same answer), the cascade's
// checks and the final answer's regeneration, the charge, the hosted tools' fees and the cache's keep and
// replay.
var fuzzResponsesPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	// Timeouts that never pass in a run of the target: every answer is read
	// through their watch (passtimeout.go), which must pass it on as is.
	"devops.yaml": "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nbudget:\n  team: {period: monthly, max_usd: 1000000}\n" +
		"timeouts: {call: 1h, first_token: 1h, idle: 1h}\n" +
		"fallback: {models: [gpt-4o], retry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms}, breaker: {consecutive_failures: 3, open_for: 1ms}}\n" +
		// A call (of gpt-4o-mini) is checked by the cascade: an answer
		// that fails a check is charged and sent to gpt-4o, which gets the
		// same answer and passes it on; a final answer of gpt-4o-mini is
		// written again by gpt-4o, which gets the same answer too.
		"routing: {cascade: {models: [gpt-4o-mini, gpt-4o]}, regenerate_final: {enabled: true, model: gpt-4o}}\n",
}

// postMayCut is postTo for an answer the gateway passes through as the
// upstream sends it: a body the upstream cut is cut for the caller too
// (net/http aborts the answer: the caller reads an error, never a whole
// answer; before any byte of the body, no answer at all, status 0), which
// cut reports.
func (g *fuzzGateway) postMayCut(t *testing.T, path, key string, body []byte) (a fuzzAnswer, cut bool) {
	t.Helper()
	resp, err := g.send(t, path, key, body, false)
	if errors.Is(err, io.EOF) {
		return fuzzAnswer{}, true
	}
	if err != nil {
		t.Fatalf("no answer (a hang, or a connection dropped by a panic): %v\ngateway log:\n%s", err, g.logs.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("status %d: reading the body: %v (read %q)\ngateway log:\n%s", resp.StatusCode, err, b, g.logs.String())
	}
	return fuzzAnswer{status: resp.StatusCode, header: resp.Header, body: b}, err != nil
}

// responsesSeeds are answers of the Responses API, valid and not.
func responsesSeeds() []upstreamAnswer {
	const usage = `"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15}`
	answer := `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4o-mini","output":[{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]},` +
		`{"type":"web_search_call","id":"ws_1","status":"completed"},{"type":"code_interpreter_call","id":"ci_1","container_id":"cntr_1"}],` + usage + `}`
	stream := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[]}}\n\n" +
		"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"web_search_call\",\"id\":\"ws_1\"}}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":" + answer + "}\n\n"
	return []upstreamAnswer{
		{status: 200, contentType: "application/json", body: []byte(answer)},
		{status: 200, contentType: "application/json", body: []byte(strings.ReplaceAll(answer, `"input_tokens":10`, `"input_tokens":9223372036854775807`))},
		{status: 200, contentType: "application/json", body: []byte(`{"object":"response","status":"completed","output":null,` + usage + `}`)},
		{status: 200, contentType: "application/json", body: []byte(`{"object":"response","status":"completed","output":[{"type":"function_call","arguments":{}}],` + usage + `}`)},
		{status: 200, contentType: "text/event-stream", body: []byte(stream)},
		{status: 200, contentType: "text/event-stream", body: []byte(strings.Replace(stream, `"output":[{"type":"message"`, `"Output":[{"type":"message"`, 1))},
		{status: 200, contentType: "text/event-stream", body: []byte(stream[:len(stream)/2]), cut: true},
		{status: 200, contentType: "text/event-stream", body: []byte(stream), pieces: true},
		{status: 429, contentType: "application/json", body: []byte(`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`), retryAfter: true},
		{status: 500, contentType: "text/html", body: []byte(`<html>oops</html>`)},
	}
}

// FuzzGatewayResponsesUpstreamAnswer: whatever an upstream answers a
// Responses call (status, Content-Type, body; cut or not, in pieces or
// not), for a team whose policy charges, prices hosted tools and caches,
// the call through the gateway gets within the timeout the upstream's
// answer — its 2xx body byte for byte (a stream followed by the gateway's
// error event when it ended without its final event) — or an
// OpenAI-shaped error; the team's spend never goes down. The same request
// sent again is either sent upstream again or a cache hit, and a hit is
// the first answer's body (a JSON answer) or a replay that ends with
// response.completed (a stream), of an answer that completed.
func FuzzGatewayResponsesUpstreamAnswer(f *testing.F) {
	for i, s := range responsesSeeds() {
		flags := uint8(0)
		if s.contentType == "text/event-stream" {
			flags |= seedStream
		}
		if s.cut {
			flags |= seedCut
		}
		if s.pieces {
			flags |= seedPieces
		}
		if s.retryAfter {
			flags |= seedRetryAfter
		}
		f.Add(s.status, s.contentType, s.body, flags|uint8(i&1)<<7)
	}
	f.Setenv(upstreamEnv, upstreamKey)
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Cleanup(ts.Close)
	g := startFuzzGateway(f, ts.URL+"/v1", fuzzResponsesPolicies, "")
	var last int64
	n := 0
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, flags uint8) {
		if status < 200 || status > 599 {
			status = http.StatusOK
		}
		if strings.ContainsAny(contentType, "\r\n\x00") || len(contentType) > 200 {
			contentType = "application/json"
		}
		ans := upstreamAnswer{status: status, contentType: contentType, body: body,
			retryAfter: flags&seedRetryAfter != 0, cut: flags&seedCut != 0, pieces: flags&seedPieces != 0, length: flags&seedLength != 0}
		up.set(ans)
		g.clearLogs()
		n++
		stream := flags&seedStream != 0
		tools := `[{"type":"function","name":"f"}]`
		if flags&0x80 != 0 {
			tools = `[{"type":"web_search"},{"type":"code_interpreter","container":{"type":"auto"}}]`
		}
		req := []byte(`{"model":"gpt-4o-mini","input":"call ` + strconv.Itoa(n) + `","max_output_tokens":50,"max_tool_calls":3,"tools":` + tools +
			`,"stream":` + strconv.FormatBool(stream) + `}`)
		a, cut := g.postMayCut(t, "/v1/responses", devopsKey, req)
		g.checkNoPanic(t)
		if cut && !ans.cut {
			t.Fatalf("the answer was cut though the upstream's was not: %d %q", a.status, a.body)
		}
		if a.status == 0 { // cut before its body: the caller reads an error
			return
		}
		upstreamOK := status >= 200 && status < 300 && validHeaderValue(contentType)
		switch {
		case a.status >= 200 && a.status < 300:
			if !upstreamOK || up.served() == 0 {
				t.Fatalf("a %d from the gateway for an upstream answer %d %q", a.status, status, contentType)
			}
			// Passed on as it came: a stream may end with the gateway's
			// cut event after it, a cut answer is a part of it. (A 204
			// has no body in HTTP: whatever bytes the upstream wrote
			// after its header are not its answer.)
			if status == http.StatusNoContent {
				body = nil
			}
			switch isStream := strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream"); {
			case isStream && !bytes.HasPrefix(a.body, body),
				!isStream && cut && !bytes.HasPrefix(body, a.body),
				!isStream && !cut && !bytes.Equal(a.body, body):
				t.Fatalf("the upstream's body (cut %v) was changed:\n%q\ngot (cut %v)\n%q", ans.cut, body, cut, a.body)
			}
		default:
			checkErrorAnswer(t, a)
		}
		g.spendGrows(t, devopsKey, &last)

		// The same request again: upstream again, or a hit of an answer
		// that completed.
		up.set(upstreamAnswer{status: 500, contentType: "application/json", body: []byte(`{"error":{"message":"again","type":"server_error"}}`)})
		b, cut := g.postMayCut(t, "/v1/responses", devopsKey, req)
		g.checkNoPanic(t)
		if cut {
			t.Fatalf("the answer to the same request again was cut: %d %q", b.status, b.body)
		}
		if b.header.Get("X-Tokenwise-Cache") != "hit" {
			return
		}
		if up.served() != 0 {
			t.Fatalf("a cache hit that went upstream")
		}
		if a.status != http.StatusOK {
			t.Fatalf("a hit of an answer that was not a 200 (%d %q)", a.status, a.body)
		}
		if !stream {
			var o struct {
				Status string `json:"status"`
			}
			if !bytes.Equal(b.body, a.body) && json.Unmarshal(a.body, &o) == nil {
				t.Fatalf("a hit that is not the first answer:\n%q\nthen\n%q", a.body, b.body)
			}
			if err := json.Unmarshal(b.body, &o); err != nil || o.Status != "completed" {
				t.Fatalf("a hit of an answer that did not complete (%v): %q", err, b.body)
			}
			return
		}
		if !strings.HasPrefix(b.header.Get("Content-Type"), "text/event-stream") ||
			!bytes.Contains(b.body, []byte("event: response.completed\ndata: {\"type\":\"response.completed\"")) {
			t.Fatalf("a streamed hit that is not a replay ending with response.completed: %q", b.body)
		}
	})
}
