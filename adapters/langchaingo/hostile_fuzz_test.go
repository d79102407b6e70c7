package langchaingo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// hostileServer answers each request with the status, content type and
// body registered under the first segment of its path.
type hostileServer struct{ answers sync.Map }

type hostileAnswer struct {
	status int
	ctype  string
	body   []byte
}

func (s *hostileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	v, ok := s.answers.Load(key)
	if !ok {
		http.Error(w, "no answer", http.StatusTeapot)
		return
	}
	a := v.(hostileAnswer)
	if a.ctype != "" {
		w.Header().Set("Content-Type", a.ctype)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// reportedUsage is the usage body reports as integers: a JSON answer's, or
// the last data line's of an event stream that has one.
func reportedUsage(body []byte, stream bool) (in, out int64, ok bool) {
	read := func(b []byte) (int64, int64, bool) {
		var u struct {
			Usage *struct {
				Prompt     *int64 `json:"prompt_tokens"`
				Completion *int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if json.Unmarshal(b, &u) != nil || u.Usage == nil || u.Usage.Prompt == nil || u.Usage.Completion == nil ||
			*u.Usage.Prompt < 0 || *u.Usage.Completion < 0 {
			return 0, 0, false
		}
		return *u.Usage.Prompt, *u.Usage.Completion, true
	}
	if !stream {
		return read(body)
	}
	for line := range strings.SplitSeq(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		if data, found := strings.CutPrefix(line, "data:"); found {
			if i, o, good := read([]byte(strings.TrimSpace(data))); good {
				in, out, ok = i, o, true
			}
		}
	}
	return in, out, ok
}

// FuzzHostileAnswerThroughLangchaingo: any answer a server sends (status,
// content type, body: JSON, an event stream, HTML, garbage) to
// langchaingo's openai backend through twlc.NewTransport, under twlc.New
// with a run budget around the default policy, gives an error tokenwise
// classified (a middleware.ProviderError) or an answer, never a panic; a
// plain answer's content is the body's; a stream answered carries
// "[DONE]" or a finish reason (a cut one is an error); the run is charged
// at least the usage a successful answer reported; and no reservation is
// left held after the call.
func FuzzHostileAnswerThroughLangchaingo(f *testing.F) {
	const (
		chunk = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
		stop  = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7000,"completion_tokens":3,"total_tokens":7003}}`
		plain = `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7000,"completion_tokens":3,"total_tokens":7003}}`
		sse   = "text/event-stream"
		js    = "application/json"
	)
	for _, s := range []struct {
		status int
		ctype  string
		body   string
		stream bool
	}{
		{200, js, plain, false},
		{200, sse, chunk + "\n\n" + stop + "\n\ndata: [DONE]\n\n", true},
		{200, sse, chunk + "\r\n\r\n: keep-alive\r\nevent: message\r\n" + strings.Replace(stop, "data: ", "data:", 1) + "\r\n\r\ndata:[DONE]\r\n\r\n", true},
		{200, sse, chunk + "\n\n", true},
		{200, sse, chunk + "\n\n" + `data: {"error":{"message":"overloaded","type":"server_error","code":503}}` + "\n\ndata: [DONE]\n\n", true},
		{200, sse, `data: {"id":"c","choices":null}` + "\n\n" + `data: {"choices":[],"usage":null}` + "\n\n" + stop + "\n\ndata: [DONE]\n\n", true},
		{200, sse, `data: {"choices":[{"delta":{"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\""}}]}}]}` + "\n\n" +
			`data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n", true},
		{200, sse, `data: {"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]}` + "\n\n" + stop + "\n\n", true},
		{200, sse, strings.Replace(chunk, `"choices"`, `"usage":{"prompt_tokens":"7000","completion_tokens":1},"choices"`, 1) + "\n\n" + stop + "\n\n", true},
		{200, "text/html", "<html><body>502 Bad Gateway</body></html>", false},
		{200, "text/html", "<html><body>502 Bad Gateway</body></html>", true},
		{400, js, `[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]`, true},
		{200, js, strings.Replace(plain, `"prompt_tokens":7000`, `"prompt_tokens":"7000"`, 1), false},
		{200, js, strings.Replace(plain, `"prompt_tokens":7000`, `"prompt_tokens":7000.5`, 1), false},
		{200, js, `{"choices":null}`, false},
		{200, js, plain[:60], false},
	} {
		f.Add(s.status, s.ctype, []byte(s.body), s.stream)
	}
	srv := &hostileServer{}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	base := &http.Transport{}
	f.Cleanup(base.CloseIdleConnections)
	b, err := budget.New(budget.Config{Run: budget.Amount{Tokens: 1 << 40}}, budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	chain := middleware.Chain(b.Middleware(), llmwrap.MustBuild(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler))))
	rt := twlc.NewTransport(base)
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte, stream bool) {
		if status != 200 {
			// Failures the default policy retries (429, 5xx) would
			// wait out its backoff: one client error stands for them.
			status = 400
		}
		if strings.ContainsAny(ctype, "\r\n\x00") || len(ctype) > 100 {
			ctype = "application/json"
		}
		key := hostileKey()
		srv.answers.Store(key, hostileAnswer{status, ctype, body})
		defer srv.answers.Delete(key)
		// A model of its own per answer: the breaker the answers before
		// opened for theirs does not refuse this one.
		model := "gpt-4o-mini-" + key
		backend, err := openai.New(openai.WithBaseURL(ts.URL+"/"+key+"/v1"), openai.WithToken("k"), openai.WithModel(model),
			openai.WithHTTPClient(&http.Client{Transport: rt}))
		if err != nil {
			t.Fatal(err)
		}
		llm := twlc.New(twlc.Models{model: backend}, chain)
		ctx, run := middleware.StartRun(context.Background(), key)
		opts := []llms.CallOption{llms.WithMaxTokens(100)}
		if stream {
			opts = append(opts, streaming())
		}
		// A prompt of its own per call: the cache never answers.
		resp, err := llm.GenerateContent(ctx, []llms.MessageContent{human("q " + key)}, opts...)
		if err != nil {
			var pe *middleware.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("an error tokenwise did not classify: %v (%T)", err, err)
			}
		} else {
			if resp == nil || len(resp.Choices) == 0 {
				t.Fatalf("no error and no answer: %+v", resp)
			}
			if stream && !bytes.Contains(body, []byte("[DONE]")) && !bytes.Contains(body, []byte(`"finish_reason"`)) {
				t.Fatalf("a stream without [DONE] nor a finish reason answered: %+v", resp.Choices[0])
			}
			if !stream {
				var a struct {
					Choices []struct {
						Message struct {
							Content *string `json:"content"`
						} `json:"message"`
					} `json:"choices"`
				}
				if json.Unmarshal(body, &a) == nil && len(a.Choices) > 0 && a.Choices[0].Message.Content != nil &&
					resp.Choices[0].Content != *a.Choices[0].Message.Content {
					t.Fatalf("content %q; the server sent %q", resp.Choices[0].Content, *a.Choices[0].Message.Content)
				}
			}
			if in, out, ok := reportedUsage(body, stream); ok {
				if used := b.RunBalance(run).Used.Tokens; used < in+out {
					t.Fatalf("the server reported %d+%d tokens; the run was charged %d", in, out, used)
				}
			}
		}
		if bal := b.RunBalance(run); bal.Reserved.Tokens != 0 || bal.InFlight != 0 {
			t.Fatalf("after the call, %d tokens still reserved, %d calls in flight", bal.Reserved.Tokens, bal.InFlight)
		}
	})
}

func hostileKey() string {
	const hex = "0123456789abcdef"
	var k [16]byte
	for i := range k {
		k[i] = hex[rand.IntN(16)]
	}
	return string(k[:])
}
