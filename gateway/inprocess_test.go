package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestInProcessTransport: the gateway as a library. Server.Transport
// serves Go clients in the process, without a socket, as `tokenwise
// serve` serves them over HTTP: openai-go's Responses API (a JSON answer
// and a stream), go-openai's chat completions and langchaingo's openai
// backend, through the same transport, are charged to the team of the virtual key at their exact
// usage; a call its budget cannot afford gets the OpenAI-shaped 429
// before it reaches the upstream; an unknown key gets the 401. A stream
// whose body is closed unread ends its call (the package's TestMain
// checks that no goroutine outlives the tests), and so does a cancelled
// context; once the gateway is closed, a call fails at once.
func TestInProcessTransport(t *testing.T) {
	up := newModelUpstream(t)
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 0.0045}\n"}
	gw := newServer(t, writeFiles(t, up.URL+"/v1", pols, ""))
	hc := &http.Client{Transport: gw.Transport()}
	const base = "http://tokenwise.invalid/v1"
	oc := openai.NewClient(option.WithHTTPClient(hc), option.WithAPIKey(devopsKey), option.WithBaseURL(base+"/"), option.WithMaxRetries(0))
	ctx := t.Context()
	spent := func() string { return spentVia(t, hc, base, devopsKey) }
	ask := func(model string) responses.ResponseNewParams {
		return responses.ResponseNewParams{Model: model, MaxOutputTokens: openai.Int(100),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks.")}}
	}

	// A Responses call: gpt-4o's 1,000 + 100 tokens, $0.0035.
	r, err := oc.Responses.New(ctx, ask("gpt-4o"))
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "from gpt-4o" || spent() != "0.003500" {
		t.Fatalf("answer %q, spent %s; want gpt-4o's, $0.003500", r.OutputText(), spent())
	}
	// A stream, read event by event: gpt-4o-mini's, $0.00021.
	if st := readResponsesStream(t, oc, ask("gpt-4o-mini")); st.text != "from gpt-4o-mini" || st.completed != 1 {
		t.Fatalf("stream: text %q, %d completed events", st.text, st.completed)
	}
	if s := spent(); s != "0.003710" {
		t.Fatalf("after the stream: spent %s, want $0.003710", s)
	}
	// A chat completion of go-openai through the same transport.
	gc := goopenai.DefaultConfig(devopsKey)
	gc.BaseURL, gc.HTTPClient = base, hc
	cr, err := goopenai.NewClientWithConfig(gc).CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 10,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "And the logs?"}}})
	if err != nil || cr.Choices[0].Message.Content != "from gpt-4o-mini" {
		t.Fatalf("chat: %v %+v", err, cr)
	}
	if s := spent(); s != "0.003920" {
		t.Fatalf("after the chat call: spent %s, want $0.003920", s)
	}
	// And langchaingo's openai backend.
	llm, err := lcopenai.New(lcopenai.WithHTTPClient(hc), lcopenai.WithBaseURL(base), lcopenai.WithToken(devopsKey), lcopenai.WithModel("gpt-4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	lr, err := llm.GenerateContent(ctx, []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "Still full?")}, llms.WithMaxTokens(20))
	if err != nil || lr.Choices[0].Content != "from gpt-4o-mini" {
		t.Fatalf("langchaingo: %v %+v", err, lr)
	}
	if s := spent(); s != "0.004130" {
		t.Fatalf("after langchaingo's call: spent %s, want $0.004130", s)
	}

	// $0.00037 left: gpt-4o's 100 output tokens ($0.001) do not fit.
	n := up.count()
	_, err = oc.Responses.New(ctx, ask("gpt-4o"))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusTooManyRequests || oe.Code != "budget_exceeded" || up.count() != n {
		t.Fatalf("a call over the budget: %v, the upstream got %d more; want the 429 budget_exceeded before the upstream", err, up.count()-n)
	}
	// An unknown key.
	bad := openai.NewClient(option.WithHTTPClient(hc), option.WithAPIKey("tw-not-a-key"), option.WithBaseURL(base+"/"), option.WithMaxRetries(0))
	if _, err := bad.Responses.New(ctx, ask("gpt-4o-mini")); !errors.As(err, &oe) || oe.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unknown key: %v, want the 401", err)
	}

	// A stream whose body is closed unread, a call whose context is
	// cancelled: each ends.
	body := `{"model":"gpt-4o-mini","input":"hi","stream":true,"max_output_tokens":10}`
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a stream: %v", err)
	}
	_ = resp.Body.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	req, _ = http.NewRequestWithContext(cctx, "POST", base+"/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	if resp, err := hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("a cancelled call answered %d", resp.StatusCode)
		}
	}

	// Closed: a call fails at once.
	_ = gw.Close()
	if _, err := oc.Responses.New(ctx, ask("gpt-4o-mini")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("a call after Close: %v, want the gateway's closed error", err)
	}
}

// TestInProcessTransportAnswersAsTheServer: the same requests, each sent
// to one gateway over HTTP and in the process, get the same answers —
// status, content type and body (a chat answer's "created" time and a
// stream's id aside) —
// for chat completions (JSON and a stream), the Responses API (JSON and a
// stream), embeddings, the model list, a body that is not JSON, a path the
// gateway passes on, an unknown key and no key.
func TestInProcessTransportAnswersAsTheServer(t *testing.T) {
	up := newModelUpstream(t)
	up.body["text-embedding-3-small"] = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`
	t.Setenv(upstreamEnv, upstreamKey)
	gw := newServer(t, writeFiles(t, up.URL+"/v1", fallbackPolicies(""), ""))
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	// (What the gateway makes anew for each call: the time, a stream's id.)
	created := regexp.MustCompile(`"created":\d+`)
	id := regexp.MustCompile(`chatcmpl-tw[0-9a-f]+`)
	answer := func(c *http.Client, base, method, path, key, body string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), id.ReplaceAll(created.ReplaceAll(b, []byte(`"created":0`)), []byte("chatcmpl-tw")))
	}
	in := &http.Client{Transport: gw.Transport()}
	for _, c := range []struct{ method, path, key, body string }{
		{"POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`},
		{"POST", "/v1/chat/completions", devopsKey, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"POST", "/v1/responses", devopsKey, `{"model":"gpt-4o","input":"hi"}`},
		{"POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"hi","stream":true}`},
		{"POST", "/v1/embeddings", devopsKey, `{"model":"text-embedding-3-small","input":"hello"}`},
		{"GET", "/v1/models", devopsKey, ``},
		{"POST", "/v1/chat/completions", devopsKey, `{"model":`},
		{"POST", "/v1/files", devopsKey, `{}`},
		{"POST", "/v1/chat/completions", "tw-not-a-key", `{"model":"gpt-4o","messages":[]}`},
		{"GET", "/v1/models", "", ``},
	} {
		overHTTP := answer(srv.Client(), srv.URL, c.method, c.path, c.key, c.body)
		inProcess := answer(in, "http://tokenwise.invalid", c.method, c.path, c.key, c.body)
		if overHTTP != inProcess {
			t.Errorf("%s %s %s:\nover HTTP:  %s\nin process: %s", c.method, c.path, c.body, overHTTP, inProcess)
		}
	}
}

// TestInProcessTransportReportsCutAnswersCut: an upstream's answer cut
// before its end (a chat completion or a Responses answer, JSON with and
// without Content-Length, or a stream) reaches a client of the gateway in
// process as it reaches a client over HTTP: as an error — a failed read
// of the body, or an error answer —, never as a whole success; and an
// answer that is whole is the same on both.
func TestInProcessTransportReportsCutAnswersCut(t *testing.T) {
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(ts.Close)
	t.Setenv(upstreamEnv, upstreamKey)
	gw := newServer(t, writeFiles(t, ts.URL+"/v1", map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nfallback: {retry: {max_attempts: 1}}\n"}, ""))
	srv := httptest.NewServer(gw.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	defer srv.Close()
	in := &http.Client{Transport: gw.Transport()}
	type got struct {
		status int
		body   string
		failed bool // the body's read failed
	}
	send := func(c *http.Client, base, path, body string) got {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+devopsKey)
		resp, err := c.Do(req)
		if err != nil {
			return got{failed: true}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return got{resp.StatusCode, string(b), err != nil}
	}
	chat := `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The disk is full."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	chatStream := "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The disk\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
	resp := cascadeAnswer("gpt-4o-mini", "completed", `{"type":"message","id":"m","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disk is full.","annotations":[]}]}`)
	respStream := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + cascadeAnswer("gpt-4o-mini", "in_progress", "") + "}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":" + resp + "}\n\n"
	const chatReq, chatStreamReq = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	const respReq, respStreamReq = `{"model":"gpt-4o-mini","input":"hi"}`, `{"model":"gpt-4o-mini","input":"hi","stream":true}`
	for _, c := range []struct {
		name, path, req, answer, ctype string
		cut, length                    bool
	}{
		{"chat", "/v1/chat/completions", chatReq, chat, "application/json", false, true},
		{"chat cut, with length", "/v1/chat/completions", chatReq, chat, "application/json", true, true},
		{"chat cut", "/v1/chat/completions", chatReq, chat, "application/json", true, false},
		{"chat stream", "/v1/chat/completions", chatStreamReq, chatStream, "text/event-stream", false, false},
		{"chat stream cut", "/v1/chat/completions", chatStreamReq, chatStream, "text/event-stream", true, false},
		{"responses", "/v1/responses", respReq, resp, "application/json", false, true},
		{"responses cut, with length", "/v1/responses", respReq, resp, "application/json", true, true},
		{"responses cut", "/v1/responses", respReq, resp, "application/json", true, false},
		{"responses stream", "/v1/responses", respStreamReq, respStream, "text/event-stream", false, false},
		{"responses stream cut", "/v1/responses", respStreamReq, respStream, "text/event-stream", true, false},
	} {
		a := upstreamAnswer{status: 200, contentType: c.ctype, body: []byte(c.answer), cut: c.cut, length: c.length}
		if c.cut {
			a.body = a.body[:len(a.body)*2/3]
		}
		up.set(a)
		overHTTP := send(srv.Client(), srv.URL, c.path, c.req)
		inProcess := send(in, "http://tokenwise.invalid", c.path, c.req)
		whole := func(g got) bool {
			return !g.failed && g.status == 200 && !strings.Contains(g.body, `"error"`) && !strings.Contains(g.body, "event: error")
		}
		if c.cut && (whole(overHTTP) || whole(inProcess)) {
			t.Errorf("%s: a cut answer read as whole: over HTTP %+v, in process %+v", c.name, overHTTP, inProcess)
		}
		if !c.cut && (!whole(inProcess) || inProcess.status != overHTTP.status ||
			regexp.MustCompile(`chatcmpl-tw[0-9a-f]+|"created":\d+`).ReplaceAllString(inProcess.body, "") !=
				regexp.MustCompile(`chatcmpl-tw[0-9a-f]+|"created":\d+`).ReplaceAllString(overHTTP.body, "")) {
			t.Errorf("%s: over HTTP %+v, in process %+v", c.name, overHTTP, inProcess)
		}
	}
}

// TestInProcessTransportUnderConcurrentCalls: 32 goroutines make 8 calls
// each through one in-process transport — chat and Responses, JSON and
// streams — and each call, at random, reads its answer whole, closes its
// body after a few bytes, or has its context cancelled at a random
// moment. Every call ends (no deadlock), an answer read whole is the
// upstream's, and no goroutine outlives the test (the package's TestMain).
func TestInProcessTransportUnderConcurrentCalls(t *testing.T) {
	up := newModelUpstream(t)
	t.Setenv(upstreamEnv, upstreamKey)
	gw := newServer(t, writeFiles(t, up.URL+"/v1", map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1000}\n"}, ""))
	in := &http.Client{Transport: gw.Transport()}
	bodies := []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi %d"}]}`, "from gpt-4o-mini"},
		{"/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi %d"}]}`, "[DONE]"},
		{"/v1/responses", `{"model":"gpt-4o","input":"hi %d"}`, "from gpt-4o"},
		{"/v1/responses", `{"model":"gpt-4o-mini","input":"hi %d","stream":true}`, "response.completed"},
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 8 {
				b := bodies[rng.IntN(len(bodies))]
				ctx, cancel := context.WithCancel(t.Context())
				mode := rng.IntN(3) // 0: read whole, 1: close early, 2: cancel
				stop := func() bool { return false }
				if mode == 2 {
					stop = time.AfterFunc(time.Duration(rng.IntN(2000))*time.Microsecond, cancel).Stop
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://tokenwise.invalid"+b.path, strings.NewReader(fmt.Sprintf(b.body, g*100+i)))
				req.Header.Set("Authorization", "Bearer "+devopsKey)
				resp, err := in.Do(req)
				if err != nil {
					if mode != 2 {
						t.Errorf("a call not cancelled failed: %v", err)
					}
					stop()
					cancel()
					continue
				}
				switch mode {
				case 1:
					_, _ = io.ReadFull(resp.Body, make([]byte, 1+rng.IntN(20)))
				default:
					got, err := io.ReadAll(resp.Body)
					if mode == 0 && (err != nil || resp.StatusCode != 200 || !strings.Contains(string(got), b.want)) {
						t.Errorf("%s: %d %v %.200s", b.path, resp.StatusCode, err, got)
					}
				}
				_ = resp.Body.Close()
				stop()
				cancel()
			}
		})
	}
	wg.Wait()
}

// TestInProcessTransportForATeam: Server.TransportFor(team) serves a Go
// service that is one team without a virtual key: openai-go with any API
// key (none of the gateway file's) calls under the team's policy and is
// charged to that team alone — devops and payments, each through its own
// transport — while Transport, and the gateway over HTTP, still refuse
// that key with the 401.
func TestInProcessTransportForATeam(t *testing.T) {
	up := newModelUpstream(t)
	t.Setenv(upstreamEnv, upstreamKey)
	gw := newServer(t, writeFiles(t, up.URL+"/v1", map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n",
		"payments.yaml": "version: 1\nname: payments\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}, ""))
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	const base = "http://tokenwise.invalid/v1/"
	params := responses.ResponseNewParams{Model: "gpt-4o", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks.")}}
	client := func(rt http.RoundTripper, base string) openai.Client {
		return openai.NewClient(option.WithHTTPClient(&http.Client{Transport: rt}), option.WithAPIKey("sk-not-a-virtual-key"),
			option.WithBaseURL(base), option.WithMaxRetries(0))
	}
	spent := func(key string) string { return spentVia(t, srv.Client(), srv.URL+"/v1", key) }
	devops, payments := client(gw.TransportFor("devops"), base), client(gw.TransportFor("payments"), base)
	if _, err := devops.Responses.New(t.Context(), params); err != nil {
		t.Fatal(err)
	}
	if d, p := spent(devopsKey), spent(paymentsKey); d != "0.003500" || p != "0.000000" {
		t.Fatalf("after devops's call: devops spent %s, payments %s; want 0.003500 and 0", d, p)
	}
	for range 2 {
		if _, err := payments.Responses.New(t.Context(), params); err != nil {
			t.Fatal(err)
		}
	}
	if d, p := spent(devopsKey), spent(paymentsKey); d != "0.003500" || p != "0.007000" {
		t.Fatalf("after payments's calls: devops spent %s, payments %s; want 0.003500 and 0.007000", d, p)
	}
	var oe *openai.Error
	for name, rt := range map[string]struct {
		rt   http.RoundTripper
		base string
	}{"Transport": {gw.Transport(), base}, "HTTP": {http.DefaultTransport, srv.URL + "/v1/"}} {
		c := client(rt.rt, rt.base)
		if _, err := c.Responses.New(t.Context(), params); !errors.As(err, &oe) || oe.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a key of no team: %v, want the 401", name, err)
		}
	}
}

// spentVia returns what the team of key spent in its period, as the
// gateway's GET /v1/spend says through c under base (…/v1).
func spentVia(t *testing.T, c *http.Client, base, key string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/spend", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s gateway.Spend
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.SpentUSD
}
