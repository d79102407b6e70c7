package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/internal/ssesniff"
)

// The gateway under hostile input from both sides: a client's request
// body (FuzzGatewayChatRequest) and an upstream's answer
// (FuzzGatewayUpstreamAnswer), each through a real gateway on a loopback
// port, built once per fuzz target (per fuzzing process), so that an input
// costs one call and one look at the team's spend.
//
// What every answer of the gateway must be, whatever came in:
//   - an answer at all, within fuzzCallTimeout (no hang, no dropped
//     connection: a handler's panic is recovered by net/http, which closes
//     the connection; no log line of the gateway mentions a panic);
//   - a status the code can give: 200, or an error status with an
//     OpenAI-shaped error body, {"error":{"message":"...","type":"..."}},
//     as application/json;
//   - a 200 JSON answer: a chat completion;
//   - a 200 stream: server-sent events (as the SSE spec splits them: CR,
//     LF or CRLF end a line) each of one JSON object, ending with
//     "data: [DONE]" or with an error event, never just stopping;
//
// and after every call the team's spend (GET /v1/spend) is whole: nothing
// negative, nothing left reserved or in flight (a reservation leaked by
// some path would hold the budget forever).

// fuzzCallTimeout bounds one call: far above what any input takes on a
// loaded machine, far below the fuzz engine's own hang detection.
const fuzzCallTimeout = 10 * time.Second

// fuzzGateway is one gateway under fuzzing, with its client.
type fuzzGateway struct {
	cfg    string // the gateway file
	srv    *gateway.Server
	done   chan error
	url    string
	client *http.Client
	logs   *syncBuffer // what the gateway logged at warn and above
}

// startFuzzGateway serves the gateway of pols in front of upstreamURL. It
// is stopped at the end of tb.
func startFuzzGateway(tb testing.TB, upstreamURL string, pols map[string]string, extra string) *fuzzGateway {
	tb.Helper()
	g := &fuzzGateway{cfg: writeFiles(tb, upstreamURL, pols, extra), logs: &syncBuffer{},
		client: &http.Client{Timeout: fuzzCallTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	tb.Cleanup(g.stop)
	g.serve(tb)
	return g
}

// serve builds the gateway of g's file and serves it; a failure fails tb.
func (g *fuzzGateway) serve(tb testing.TB) {
	tb.Helper()
	cfg, err := gateway.LoadConfig(g.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := gateway.New(cfg, gateway.WithLogger(logger), gateway.WithPolicyWatch(false))
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		tb.Fatal(err)
	}
	g.srv, g.url, g.done = srv, "http://"+l.Addr().String(), make(chan error, 1)
	go func() { g.done <- srv.Serve(l) }()
}

// stop stops the gateway, if one is serving.
func (g *fuzzGateway) stop() {
	if g.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
	<-g.done
	g.srv = nil
	g.client.CloseIdleConnections()
}

// restart replaces the gateway by a new one of the same file: its
// in-memory budgets start from nothing.
func (g *fuzzGateway) restart(t *testing.T) {
	g.stop()
	g.serve(t)
}

// fuzzAnswer is the gateway's answer to one call.
type fuzzAnswer struct {
	status int
	header http.Header
	body   []byte
}

// post sends a chat completion body with key; chunked sends it without a
// length. A call that gets no whole answer fails t.
func (g *fuzzGateway) post(t *testing.T, key string, body []byte, chunked bool) fuzzAnswer {
	t.Helper()
	return g.postTo(t, "/v1/chat/completions", key, body, chunked)
}

// postTo is post to another path of the gateway.
func (g *fuzzGateway) postTo(t *testing.T, path, key string, body []byte, chunked bool) fuzzAnswer {
	t.Helper()
	resp, err := g.send(t, path, key, body, chunked)
	if err != nil {
		t.Fatalf("no answer (a hang, or a connection dropped by a panic): %v\ngateway log:\n%s", err, g.logs.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("status %d: the body was cut: %v (read %q)\ngateway log:\n%s", resp.StatusCode, err, b, g.logs.String())
	}
	return fuzzAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// send posts body to path with key; chunked sends it without a length.
func (g *fuzzGateway) send(t *testing.T, path, key string, body []byte, chunked bool) (*http.Response, error) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = struct{ io.Reader }{rd} // a length net/http cannot know: sent chunked
	}
	req, err := http.NewRequest(http.MethodPost, g.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return g.client.Do(req)
}

// fuzzSpend is a team's spend as GET /v1/spend reports it.
type fuzzSpend struct {
	spent, reserved, limit int64 // micro-USD
	tokens, limitTokens    int64
	inFlight               int64
}

// spend reads the spend of key's team and checks that it is whole after a
// call: nothing negative, nothing reserved, no call in flight.
func (g *fuzzGateway) spend(t *testing.T, key string) fuzzSpend {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+"/v1/spend", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/spend: %v", err)
	}
	defer resp.Body.Close()
	var sp gateway.Spend
	if err := json.NewDecoder(resp.Body).Decode(&sp); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/spend: %d %v", resp.StatusCode, err)
	}
	var out fuzzSpend
	for _, v := range []struct {
		dst *int64
		s   string
	}{{&out.spent, sp.SpentUSD}, {&out.reserved, sp.ReservedUSD}, {&out.limit, sp.LimitUSD}} {
		if *v.dst, err = parseMicros(v.s); err != nil {
			t.Fatalf("spend %+v: %v", sp, err)
		}
	}
	out.tokens, out.limitTokens, out.inFlight = sp.SpentTokens, sp.LimitTokens, sp.InFlightCalls
	if out.spent < 0 || out.tokens < 0 || out.reserved != 0 || out.inFlight != 0 {
		t.Fatalf("after the call, the team's spend is %+v: want nothing negative, nothing reserved, no call in flight", sp)
	}
	return out
}

// spendGrows checks that the spend of key's team is whole after a call
// and not below *last, the spend after the previous input, and sets
// *last to it. Once an upstream's made-up usage has spent half the
// budget, it starts a fresh gateway (and *last from 0), so that the next
// inputs are not all refused.
func (g *fuzzGateway) spendGrows(t *testing.T, key string, last *int64) {
	t.Helper()
	sp := g.spend(t, key)
	if sp.spent < *last {
		t.Fatalf("the team's spend went down: %d micro-USD, then %d", *last, sp.spent)
	}
	*last = sp.spent
	if sp.spent > sp.limit/2 {
		g.restart(t)
		*last = 0
	}
}

// parseMicros reads a decimal dollar amount of /v1/spend ("1.000000", "-0.000002",
// "" for none) in micro-dollars.
func parseMicros(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, ok := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if !ok || len(frac) != 6 {
		return 0, fmt.Errorf("amount %q is not dollars with 6 decimals", s)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	m := w*1_000_000 + f
	if neg {
		m = -m
	}
	return m, nil
}

// panicMarks are what a panic leaves: net/http's line for a handler's
// panic, and the error a panic recovered under the chain becomes
// (middleware.PanicError).
var panicMarks = []string{"panic serving", "tokenwise/middleware: panic"}

func hasPanic(s string) bool {
	for _, m := range panicMarks {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// checkNoPanic fails t when the gateway logged a panic during the call.
func (g *fuzzGateway) checkNoPanic(t *testing.T) {
	t.Helper()
	if logs := g.logs.String(); hasPanic(logs) {
		t.Fatalf("the gateway logged a panic:\n%s", logs)
	}
}

// checkErrorAnswer checks an error answer: an error status the gateway can
// give, application/json, and an OpenAI-shaped error body.
func checkErrorAnswer(t *testing.T, a fuzzAnswer) {
	t.Helper()
	if a.status < 400 || a.status > 599 {
		t.Fatalf("status %d: neither 200 nor an error status: %q", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: Content-Type %q, want an application/json error: %q", a.status, ct, a.body)
	}
	if err := openAIError(a.body); err != nil {
		t.Fatalf("status %d: %v: %q", a.status, err, a.body)
	}
	if hasPanic(string(a.body)) {
		t.Fatalf("status %d: a panic reached the caller: %s", a.status, a.body)
	}
}

// openAIError checks that b is an OpenAI error body: a JSON object whose
// "error" member is an object with a string "message" and a string
// "type" (what every official SDK reads into its API error), member names
// matched exactly.
func openAIError(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("the error body is not a JSON object: %v", err)
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &e); err != nil || e == nil {
		return errors.New(`the error body has no "error" object`)
	}
	for _, k := range []string{"message", "type"} {
		v := bytes.TrimSpace(e[k])
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return fmt.Errorf("error.%s is not a string", k)
		}
	}
	return nil
}

// sseEvents splits a stream into its events' data as the SSE spec reads
// them (and as the official SDKs' decoders do): a line ends with CRLF, LF
// or CR; a "data" field's value (one leading space removed) is appended to
// the event's data, several joined by LF; a blank line dispatches the
// event. cut reports bytes after the last dispatched event (a stream that
// stopped inside an event).
func sseEvents(b []byte) (events []string, cut bool) {
	var data []string
	pending := false // a field line of an event not yet dispatched
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			return events, true // a line without its end
		}
		line := b[:i]
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			b = b[i+2:]
		} else {
			b = b[i+1:]
		}
		if len(line) == 0 {
			if data != nil {
				events = append(events, strings.Join(data, "\n"))
			}
			data, pending = nil, false
			continue
		}
		pending = true
		if line[0] == ':' {
			continue // a comment
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(name) == "data" {
			data = append(data, string(value))
		}
	}
	return events, pending
}

// streamEnd checks a 200 stream of the gateway and returns how it ended:
// "done" ([DONE] last) or "error" (an OpenAI-shaped error event last).
// Every other event is a JSON object without an error; decode, when not
// nil, checks each.
func streamEnd(t *testing.T, body []byte, decode func(string) error) string {
	t.Helper()
	events, cut := sseEvents(body)
	if cut {
		t.Fatalf("the stream stops inside an event:\n%q", body)
	}
	if len(events) == 0 {
		t.Fatalf("a 200 stream without events:\n%q", body)
	}
	for i, ev := range events {
		last := i == len(events)-1
		if ev == "[DONE]" {
			if !last {
				t.Fatalf("event %d of %d is [DONE]:\n%q", i+1, len(events), body)
			}
			return "done"
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(ev), &obj); err != nil {
			t.Fatalf("event %d is not a JSON object (%v): %q\nstream:\n%q", i+1, err, ev, body)
		}
		if e, ok := obj["error"]; ok && string(e) != "null" {
			if !last {
				t.Fatalf("the error event %d is not the stream's last:\n%q", i+1, body)
			}
			if err := openAIError([]byte(ev)); err != nil {
				t.Fatalf("error event: %v: %q", err, ev)
			}
			if hasPanic(ev) {
				t.Fatalf("a panic reached the caller: %s", ev)
			}
			return "error"
		}
		if decode != nil {
			if err := decode(ev); err != nil {
				t.Fatalf("event %d: %v: %q", i+1, err, ev)
			}
		}
	}
	t.Fatalf("the stream ends with neither [DONE] nor an error event:\n%q", body)
	return ""
}

// goOpenAIChunk decodes a chunk as go-openai's stream reader does.
func goOpenAIChunk(ev string) error {
	var c goopenai.ChatCompletionStreamResponse
	return json.Unmarshal([]byte(ev), &c)
}

// fuzzRequestPolicies: devops (devopsKey) has a team budget in dollars it
// never reaches and a response cache (identical inputs are answered from
// it, streams replayed); payments (paymentsKey) a team budget of 20,000
// tokens the fuzzing exhausts, and a cap of 1,000 output tokens a call.
var fuzzRequestPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	"devops.yaml": `version: 1
name: devops
budget:
  team: {period: monthly, max_usd: 100000}
cache:
  enabled: true
`,
	"payments.yaml": `version: 1
name: payments
budget:
  request: {max_output_tokens: 1000}
  team: {period: monthly, max_tokens: 20000}
`,
}

// fuzzRequestSeeds are client bodies: valid requests of every shape, and
// the hostile ones.
func fuzzRequestSeeds() []string {
	msg := `"messages":[{"role":"user","content":"hi"}]`
	seeds := []string{
		`{"model":"gpt-4o-mini",` + msg + `}`,
		`{"model":"gpt-4o",` + msg + `,"stream":true}`,
		`{"model":"gpt-4o-mini",` + msg + `,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"gpt-4o-mini",` + msg + `,"stream":false,"stream_options":null}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"weather in Paris?"}],` +
			`"tools":[{"type":"function","function":{"name":"get_weather","description":"w","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto","parallel_tool_calls":false}`,
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"weather?"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
			`{"role":"tool","tool_call_id":"call_1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}}]}]}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},{"type":"text","text":"transcribe"}]}]}`,
		`{"model":"gpt-4o-mini",` + msg + `,"n":3}`,
		`{"model":"gpt-4o-mini",` + msg + `,"n":3,"stream":true}`,
		`{"model":"gpt-4o-mini",` + msg + `,"n":100000000000000,"max_tokens":100000000}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":-1}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":0}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":9223372036854775807}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":99999999999999999999999}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":1e400}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_completion_tokens":5}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":10,"max_completion_tokens":1000000}`,
		`{"model":"o3-mini",` + msg + `,"max_completion_tokens":100,"reasoning_effort":"high"}`,
		`{"model":"gpt-4o-mini",` + msg + `,"temperature":2.5,"top_p":0.1,"logprobs":true,"top_logprobs":5,"seed":7,"stop":["\n","END"],"user":"u"}`,
		`{"model":"gpt-4o-mini",` + msg + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}`,
		`{"model":"gpt-4o-mini",` + msg + `,"service_tier":"flex"}`,
		`{"model":"gpt-4o-mini",` + msg + `,"frobnicate":{"a":[1,2,{"b":null}]},"x-extra":true}`,
		`{"model":"gpt-4o-mini",` + msg + `,"temperature":null,"tools":null,"tool_choice":null,"n":null,"max_tokens":null,"stream":null}`,
		`{"model":null,"messages":null}`,
		`{"model":"gpt-4o-mini",` + msg + `,"stream":"yes"}`,
		`{"model":"gpt-4o-mini","messages":{}}`,
		`{"model":"gpt-4o-mini","messages":[]}`,
		`{"model":"gpt-4o-mini","messages":[{}]}`,
		`{"model":"gpt-4o-mini","messages":[null]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"wizard","content":"hi"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"developer","content":"x"},{"role":"user","content":"` + strings.Repeat("long ", 200) + `"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":5}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text"}]}]}`,
		`{"messages":[{"role":"user","content":"no model"}]}`,
		`{"model":"no-such-model",` + msg + `}`,
		`{"model":"gpt-4o-mini",` + msg + `,"model":"gpt-4o"}`,
		// Members in another case, which servers that match names without
		// regard to case (encoding/json, and the scripted upstream) read
		// as the member itself.
		`{"model":"gpt-4o",` + msg + `,"streAm":true}`,
		`{"model":"gpt-4o-mini",` + msg + `,"ſtream":true}`,
		`{"model":"gpt-4o-mini",` + msg + `,"max_tokens":5,"MAX_TOKENS":100000}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","Content":"` + strings.Repeat("more ", 100) + `"}]}`,
		`{"model":"gpt-4o-mini",` + msg + `,"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		`{"model":"gpt-4o-mini",` + msg + `,"x":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}`,
		"{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe utf-8 \xc3\"}]}",
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"nul \u0000 and a lone surrogate \ud800 and \u2028"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","con`,
		`{"model":"gpt-4o-mini",` + msg + `} trailing`,
		`[{"model":"gpt-4o-mini"}]`,
		`"just a string"`,
		`null`,
		`not json at all`,
		``,
		"\xef\xbb\xbf{\"model\":\"gpt-4o-mini\"," + msg + "}",
	}
	return seeds
}

// FuzzGatewayChatRequest: whatever body a client posts with a valid key,
// the gateway (in front of an upstream that answers validly) answers it
// within the timeout with a status it can give — 200, 400 (a body it cannot
// police), 413 (over limits.max_body), 429 (the team's budget) — an
// OpenAI-shaped error for every error, a chat completion go-openai reads
// for a 200 JSON answer, and for a 200 stream chunks go-openai reads
// ending with data: [DONE]; the answer is a stream exactly when the body
// asked for one. A 200 is given only to a JSON body. The team's spend is
// whole after every call and never above its limit, and every call the
// payments team sends upstream has an output bound whose worst case (n ×
// max tokens) fits its budget.
func FuzzGatewayChatRequest(f *testing.F) {
	for i, s := range fuzzRequestSeeds() {
		f.Add([]byte(s), uint8(i%4))
	}
	// The team with a token budget, whose bound a max_tokens in another
	// case escaped.
	f.Add([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"MAX_TOKENS":100000}`), uint8(1))
	f.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.NewServer(f)
	// One input and one output token a call, whatever the request: the
	// upstream never bills more than the budget reserved (its worst case,
	// at least one token each way), as a provider honouring max_tokens
	// does; so the team's spend may never pass its limit.
	up.Default(openaitest.Reply{Content: "ok", Usage: &openaitest.Usage{PromptTokens: 1, CompletionTokens: 1}})
	g := startFuzzGateway(f, up.URL, fuzzRequestPolicies, "limits: {max_body: 64KiB}\n")
	f.Fuzz(func(t *testing.T, body []byte, flags uint8) {
		key, team := devopsKey, "devops"
		if flags&1 != 0 {
			key, team = paymentsKey, "payments"
		}
		up.Reset()
		g.clearLogs()
		a := g.post(t, key, body, flags&2 != 0)
		g.checkNoPanic(t)
		switch a.status {
		case http.StatusOK:
			checkOKRequestAnswer(t, body, a)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
			checkErrorAnswer(t, a)
		default:
			t.Fatalf("status %d for a call the upstream answers validly: %s\nbody sent: %q", a.status, a.body, body)
		}
		sp := g.spend(t, key)
		if sp.limit > 0 && sp.spent > sp.limit || sp.limitTokens > 0 && sp.tokens > sp.limitTokens {
			t.Fatalf("team %s spent %d micro-USD, %d tokens: over its limit (%d micro-USD, %d tokens)", team, sp.spent, sp.tokens, sp.limit, sp.limitTokens)
		}
		if team == "payments" {
			for _, r := range up.Requests() {
				checkOutputBound(t, r.Body, sp.limitTokens)
			}
		}
	})
}

// checkOKRequestAnswer checks a 200 to body: body was JSON, and the answer
// is in the format it asked for, one go-openai reads.
func checkOKRequestAnswer(t *testing.T, body []byte, a fuzzAnswer) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("200 for a body that is not JSON: %q", body)
	}
	var req struct {
		Stream *bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req) // the gateway refuses a stream that is not a boolean
	stream := req.Stream != nil && *req.Stream
	ct := a.header.Get("Content-Type")
	if stream {
		if !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("a streaming request answered with Content-Type %q: %q", ct, a.body)
		}
		if end := streamEnd(t, a.body, goOpenAIChunk); end != "done" {
			t.Fatalf("a stream from an upstream that answers validly ended with %s:\n%q", end, a.body)
		}
		return
	}
	if !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("a request without stream answered with Content-Type %q: %q", ct, a.body)
	}
	var resp goopenai.ChatCompletionResponse
	if err := json.Unmarshal(a.body, &resp); err != nil || len(resp.Choices) == 0 {
		t.Fatalf("go-openai cannot read the 200 answer (%v, %d choices): %q", err, len(resp.Choices), a.body)
	}
}

// checkOutputBound checks a request the gateway sent upstream for a team
// with a token budget of limit: it bounds its output (max_tokens or
// max_completion_tokens), and n times that bound fits the budget.
func checkOutputBound(t *testing.T, body []byte, limit int64) {
	t.Helper()
	var r struct {
		N                   *float64 `json:"n"`
		MaxTokens           *float64 `json:"max_tokens"`
		MaxCompletionTokens *float64 `json:"max_completion_tokens"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("the gateway sent upstream a body that is not JSON (%v): %q", err, body)
	}
	bound := 0.0
	for _, v := range []*float64{r.MaxTokens, r.MaxCompletionTokens} {
		if v != nil {
			bound = max(bound, *v)
		}
	}
	n := 1.0
	if r.N != nil {
		n = max(*r.N, 1)
	}
	if bound <= 0 || n*bound > float64(limit) {
		t.Fatalf("a call of a team with a budget of %d tokens went upstream with n %v, max_tokens %v, max_completion_tokens %v: its worst case does not fit\n%s",
			limit, ptrVal(r.N), ptrVal(r.MaxTokens), ptrVal(r.MaxCompletionTokens), body)
	}
}

func ptrVal(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// clearLogs forgets what the gateway logged, before the next input (the
// inputs of a fuzzing process run one at a time).
func (g *fuzzGateway) clearLogs() {
	g.logs.mu.Lock()
	g.logs.b.Reset()
	g.logs.mu.Unlock()
}

// upstreamAnswer is what the raw upstream of FuzzGatewayUpstreamAnswer
// answers every request with.
type upstreamAnswer struct {
	info        int // a 1xx status sent before status (0: none)
	status      int
	contentType string
	body        []byte
	retryAfter  bool // a Retry-After header
	cut         bool // the connection is aborted after the body: no clean end
	pieces      bool // the body is written and flushed line by line
	length      bool // a Content-Length header: the body's length, one byte more when cut
}

// rawUpstream serves the answer set last, recording the calls.
type rawUpstream struct {
	mu    sync.Mutex
	ans   upstreamAnswer
	calls int
}

func (u *rawUpstream) set(a upstreamAnswer) {
	u.mu.Lock()
	u.ans, u.calls = a, 0
	u.mu.Unlock()
}

func (u *rawUpstream) served() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

func (u *rawUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	a := u.ans
	u.calls++
	u.mu.Unlock()
	h := w.Header()
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	} else {
		h["Content-Type"] = nil // no sniffing: no Content-Type at all
	}
	if a.retryAfter {
		h.Set("Retry-After", "1")
	}
	if a.length {
		n := len(a.body)
		if a.cut {
			n++ // a body shorter than it says
		}
		h.Set("Content-Length", strconv.Itoa(n))
	}
	if a.info != 0 {
		w.WriteHeader(a.info)
	}
	w.WriteHeader(a.status)
	rc := http.NewResponseController(w)
	if a.pieces {
		for rest := a.body; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n') + 1
			if i == 0 {
				i = len(rest)
			}
			if _, err := w.Write(rest[:i]); err != nil {
				return
			}
			_ = rc.Flush()
			rest = rest[i:]
		}
	} else {
		_, _ = w.Write(a.body)
	}
	if a.cut {
		_ = rc.Flush()
		panic(http.ErrAbortHandler) // the connection is closed without the body's end
	}
}

// Seeds of FuzzGatewayUpstreamAnswer: an upstream's answers, valid and
// not, in the shapes OpenAI-compatible servers send.
const (
	okCompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
	okChunk1     = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}`
	okChunk2     = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo!"},"finish_reason":null}]}`
	okChunkStop  = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	okChunkUsage = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
)

func sse(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("data: " + l + "\n\n")
	}
	return b.String()
}

type upstreamSeed struct {
	status      int
	contentType string
	body        string
	flags       uint8 // 1 Retry-After, 2 cut, 4 pieces, 8 Content-Length, 16 a streaming request, 32 of n 2, 64 stored
}

const (
	seedRetryAfter = 1 << iota
	seedCut
	seedPieces
	seedLength
	seedStream
	seedN2
	seedStore // the request asks the provider to store the completion (its id is kept to the team)
)

func upstreamSeeds() []upstreamSeed {
	const (
		js = "application/json"
		ev = "text/event-stream"
	)
	okStream := sse(okChunk1, okChunk2, okChunkStop, okChunkUsage, "[DONE]")
	return []upstreamSeed{
		{200, js, okCompletion, seedLength},
		{200, js, okCompletion, seedStore},
		{200, js, okCompletion[:len(okCompletion)/2], seedStore | seedLength | seedCut},
		{200, ev, okStream, seedStream | seedStore | seedPieces},
		{200, ev, sse(`{"id":null,"choices":[{"index":0,"delta":{"content":"a"}}]}`, `{"id":7}`, okChunkStop, "[DONE]"), seedStream | seedStore},
		{200, ev, sse(okChunk1, okChunk2), seedStream | seedStore | seedCut},
		{200, js, okCompletion, seedStream},
		{200, ev, okStream, seedStream | seedPieces},
		{200, ev, okStream, 0},
		{200, ev, sse(okChunk1, okChunk2), seedStream | seedPieces},                // no finish, no [DONE]
		{200, ev, sse(okChunk1, okChunk2), seedStream | seedCut},                   // cut
		{200, ev, sse(okChunk1, okChunk2, okChunkStop), seedStream},                // finished, no [DONE]
		{200, ev, sse(okChunk1, okChunk2, okChunkStop), seedStream | seedN2},       // one of two choices finished, no [DONE]
		{200, ev, sse(okChunk1, okChunk2, okChunkStop), seedStream | seedCut},      // finished, then cut
		{200, ev, sse(okChunk1, `{"choices":[{"delta":{"content":"x`), seedStream}, // a truncated chunk
		{200, ev, "data:" + okChunk1 + "\n\ndata:" + okChunkStop + "\n\ndata:[DONE]\n\n", seedStream},
		{200, ev, "data: " + okChunk1 + "\r\n\r\n: keep-alive\r\n\r\nevent: message\r\ndata: " + okChunkStop + "\r\n\r\ndata: [DONE]\r\n\r\n", seedStream | seedPieces},
		{200, ev, ": comment only\n\n", seedStream},
		{200, ev, sse(okChunk1, `{"error":{"message":"overloaded","type":"server_error"}}`), seedStream},
		{200, ev, sse(`{"error":{"message":"rate limited","type":"rate_limit_error","code":"rate_limit_exceeded"}}`), seedStream},
		{200, ev, sse(okChunk1, `{"id":"c","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":null}`, "[DONE]"), seedStream},
		{200, ev, sse(okChunk1, `{"choices":[],"usage":{"prompt_tokens":-5,"completion_tokens":-1,"total_tokens":-6}}`, "[DONE]"), seedStream},
		{200, ev, sse(okChunk1, `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1e15,"completion_tokens":9.5,"total_tokens":1e300}}`, "[DONE]"), seedStream},
		{200, ev, sse(`{"choices":null}`, `{"choices":[{"delta":null}]}`, "[DONE]"), seedStream},
		{200, ev, sse(okChunk1+"\r{\"x\":1}", "[DONE]"), seedStream},
		{200, ev, "data: " + strings.Replace(okChunk1, ",", ",\r", 3) + "\n\ndata: " + okChunkStop + "\n\ndata: [DONE]\n\n", seedStream},
		{200, ev, sse(`{"id":"c","choices":[{"index":0,"delta":{"content":"`+strings.Repeat("long line ", 3000)+`"},"finish_reason":null}]}`, okChunkStop, "[DONE]"), seedStream | seedPieces},
		{200, ev, sse(`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`, "[DONE]"), seedStream},
		{200, ev, sse(`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":7,"function":{"arguments":"x"}}]}}]}`, "[DONE]"), seedStream},
		{200, ev, sse(`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[null]}}]}`, "[DONE]"), seedStream},
		{200, ev, sse(`{"id":"c","choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]}`, `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length"}]}`, "[DONE]"), seedStream | seedN2},
		{200, ev, sse(okChunkUsage, okChunk1, okChunkUsage, okChunkStop, "[DONE]", okChunk2), seedStream},
		{200, ev, sse(`{"choices":[{"index":0,"delta":{"reasoning_content":"think","refusal":"no"},"logprobs":{"content":[{"token":"a","logprob":-0.1}]}}]}`, okChunkStop, "[DONE]"), seedStream},
		{200, ev, okCompletion, seedStream},
		{200, js, okStream, 0},
		{200, js, `{"choices":null}`, 0},
		{200, js, `{"choices":[]}`, 0},
		{200, js, `{}`, 0},
		{200, js, `{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}`, 0},
		{200, js, `{"error":{"message":"quota","type":"insufficient_quota"}}`, seedStream},
		{200, js, `{"choices":[{"message":{"content":"hi"}}],"usage":null}`, 0},
		{200, js, `{"choices":[{"index":0,"message":{"content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`, seedStream},
		{200, js, `{"choices":[{"index":1,"message":{"content":"b"}},{"index":0,"message":{"content":[{"type":"text","text":"a"}]}}]}`, seedStream | seedN2},
		{200, js, "\xef\xbb\xbf" + okCompletion, 0},
		{200, js, `{"choices":[{"message":{"content":"bad ` + "\xff" + ` utf-8"}}]}`, 0},
		{200, js, `{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":-3,"completion_tokens":-4,"total_tokens":-7}}`, 0},
		{200, js, `{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":1e30,"completion_tokens":9223372036854775807,"total_tokens":5.5}}`, 0},
		{200, js, `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000000000000,"completion_tokens":1000000000000}}`, seedStream},
		{200, js, okCompletion[:len(okCompletion)/2], 0},
		{200, js, okCompletion[:len(okCompletion)/2], seedLength | seedCut},
		{200, js, okCompletion + "\n" + okCompletion, 0},
		{200, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", 0},
		{200, "", "", 0},
		{200, "", "", seedStream},
		{204, "", "", 0},
		{201, js, okCompletion, 0},
		{103, js, okCompletion, seedStream}, // 103 Early Hints, then the 200
		{101, js, okCompletion, 0},
		{302, "text/html", "<a href=\"/elsewhere\">Found</a>", 0},
		{400, js, `{"error":{"message":"bad request","type":"invalid_request_error","param":"messages","code":null}}`, 0},
		{401, js, `{"error":{"message":"Incorrect API key provided: sk-upstream-secret-00112233445566778899aabbccdd","type":"invalid_request_error","code":"invalid_api_key"}}`, seedStream},
		{404, js, `{"detail":"Not Found"}`, 0},
		{404, js, `{"error":"model 'gpt-4o-mini' not found"}`, seedStream},
		{400, js, `{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}`, 0},
		{422, js, `{"error":{"message":["a","b"],"type":"invalid_request_error"}}`, 0},
		{429, js, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, seedRetryAfter},
		{429, "", "", seedStream},
		{500, js, `{"error":{"message":"The server had an error","type":"server_error"}}`, 0},
		{500, "text/html", "<html><body>Internal Server Error</body></html>", seedStream},
		{502, "text/html", "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", 0},
		{503, "text/plain", "upstream connect error or disconnect/reset before headers", seedRetryAfter | seedStream},
		{503, ev, sse(okChunk1), seedStream},
		{504, "", "", seedCut},
		{500, js, `{"error":{"message":"cut`, seedCut | seedLength},
	}
}

// fuzzUpstreamPolicies: devops has a team budget in dollars (restarted
// when a fabulous usage the upstream reported has spent most of it), no
// retries, no breaker: each input reaches the upstream as it is.
var fuzzUpstreamPolicies = map[string]string{
	"default.yaml": "version: 1\nname: default\n",
	"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1000000}\n",
}

// FuzzGatewayUpstreamAnswer: whatever an upstream answers (status,
// Content-Type, body; cut or not, in pieces or not), a call through the
// gateway, streaming or not, gets within the timeout either an
// OpenAI-shaped error (the upstream's own error status for an upstream
// error), or a 200 only for a real answer: a chat completion the upstream
// sent (2xx, a JSON object with choices and no error), or a stream that
// ends with [DONE] only when the upstream's did (its [DONE], a finish
// reason before a clean end, or a whole JSON answer replayed), and with an
// error event when it was cut or broken. The team's spend is whole after
// every call and never goes down.
func FuzzGatewayUpstreamAnswer(f *testing.F) {
	for _, s := range upstreamSeeds() {
		f.Add(s.status, s.contentType, []byte(s.body), s.flags)
	}
	f.Setenv(upstreamEnv, upstreamKey)
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // what it says of the bodies it may not send
	f.Cleanup(ts.Close)
	g := startFuzzGateway(f, ts.URL+"/v1", fuzzUpstreamPolicies, "")
	var last int64 // the team's spend after the previous input
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, flags uint8) {
		info := 0
		switch {
		case status < 100 || status > 599 || status == http.StatusSwitchingProtocols:
			status = http.StatusOK
		case status < 200:
			info, status = status, http.StatusOK // an informational answer first
		}
		if strings.ContainsAny(contentType, "\r\n\x00") || len(contentType) > 200 {
			contentType = "application/json" // not a header value net/http would send
		}
		ans := upstreamAnswer{info: info, status: status, contentType: contentType, body: body,
			retryAfter: flags&seedRetryAfter != 0, cut: flags&seedCut != 0, pieces: flags&seedPieces != 0, length: flags&seedLength != 0}
		stream := flags&seedStream != 0
		up.set(ans)
		g.clearLogs()
		n := 1
		if flags&seedN2 != 0 {
			n = 2
		}
		store := ""
		if flags&seedStore != 0 {
			store = `,"store":true`
		}
		req := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"n":` + strconv.Itoa(n) + `,"stream":` + strconv.FormatBool(stream) + store + `}`
		a := g.post(t, devopsKey, []byte(req), false)
		g.checkNoPanic(t)
		calls := up.served()
		switch {
		case a.status == http.StatusOK && stream:
			checkOKStreamFromUpstream(t, ans, a, calls, n)
		case a.status == http.StatusOK:
			checkOKAnswerFromUpstream(t, ans, a, calls)
		default:
			checkErrorAnswer(t, a)
			// (an answer with a header net/http cannot read is no answer:
			// a 502)
			if ans.status >= 400 && calls > 0 && validHeaderValue(contentType) && a.status != ans.status {
				t.Fatalf("the upstream answered %d, the caller got %d: %s", ans.status, a.status, a.body)
			}
		}
		g.spendGrows(t, devopsKey, &last)
	})
}

// validHeaderValue reports whether v is a header value net/http reads:
// no control character but HTAB.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkOKAnswerFromUpstream checks a 200 JSON answer: the upstream sent a
// chat completion, and the caller got it (as the upstream sent it, or
// rendered in a shape go-openai reads).
func checkOKAnswerFromUpstream(t *testing.T, ans upstreamAnswer, a fuzzAnswer, calls int) {
	t.Helper()
	if calls == 0 || ans.status < 200 || ans.status > 299 {
		t.Fatalf("200 when the upstream (%d calls) answered %d: %q", calls, ans.status, a.body)
	}
	if !isCompletion(ans.body) {
		t.Fatalf("200 with %q for an upstream answer that is no chat completion: %q", a.body, ans.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("a request without stream answered with Content-Type %q", ct)
	}
	if bytes.Equal(a.body, ans.body) {
		return
	}
	var resp goopenai.ChatCompletionResponse
	if err := json.Unmarshal(a.body, &resp); err != nil || len(resp.Choices) == 0 {
		t.Fatalf("the gateway's own 200 answer is not one go-openai reads (%v): %q\nupstream: %q", err, a.body, ans.body)
	}
}

// checkOKStreamFromUpstream checks a 200 stream: it ends with [DONE] only
// when the upstream's answer was whole.
func checkOKStreamFromUpstream(t *testing.T, ans upstreamAnswer, a fuzzAnswer, calls, n int) {
	t.Helper()
	if calls == 0 || ans.status < 200 || ans.status > 299 {
		t.Fatalf("200 when the upstream (%d calls) answered %d: %q", calls, ans.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("a streaming request answered with Content-Type %q: %q", ct, a.body)
	}
	if streamEnd(t, a.body, nil) != "done" {
		return // reported as broken: right whatever the upstream sent
	}
	// A body labelled JSON that begins as an event stream does is read as
	// one, as go-openai reads it (the transport sniffs it).
	isJSON := strings.HasPrefix(ans.contentType, "application/json") && !ssesniff.Sniff(bufio.NewReader(bytes.NewReader(ans.body)))
	switch {
	case isJSON && isCompletion(ans.body): // a whole answer, replayed as a stream
	case !isJSON && upstreamDone(ans.body):
	case !isJSON && !ans.cut && n == 1 && finishReason.Match(ans.body):
		// closed cleanly after a finish reason: whole (servers that never
		// send [DONE]); with n > 1 the other choices' ends are not known
	default:
		t.Fatalf("the stream ends with [DONE], but the upstream's (%s, cut %t) was not whole:\n%q\ngateway:\n%q", ans.contentType, ans.cut, ans.body, a.body)
	}
}

// finishReason finds a chunk's finish reason that is a string.
var finishReason = regexp.MustCompile(`"finish_reason"\s*:\s*"[^"]`)

// isCompletion reports whether b is a chat completion: a JSON object with
// a non-empty choices array and no error.
func isCompletion(b []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	if isErrorValue(top["error"]) {
		return false
	}
	var choices []json.RawMessage
	return json.Unmarshal(top["choices"], &choices) == nil && len(choices) > 0
}

// isErrorValue reports whether the value of an "error" member is an
// error: a non-empty string, or an object with a non-empty string message
// or type, or a code (servers send "error": null, and empty objects,
// beside a valid answer).
func isErrorValue(v json.RawMessage) bool {
	var str string
	if json.Unmarshal(v, &str) == nil {
		return str != ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil || obj == nil {
		return false
	}
	for _, k := range [...]string{"message", "type"} {
		if json.Unmarshal(obj[k], &str) == nil && str != "" {
			return true
		}
	}
	c := string(obj["code"])
	return c != "" && c != "null" && c != `""`
}

// upstreamDone reports whether an upstream's stream holds "data: [DONE]"
// as the provider reads lines (ended by LF, CRs at the end removed, spaces
// and tabs around the payload removed).
func upstreamDone(b []byte) bool {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if p, ok := bytes.CutPrefix(line, []byte("data:")); ok && string(bytes.Trim(p, " \t")) == "[DONE]" {
			return true
		}
	}
	return false
}
