package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sashabaranov/go-openai"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// hostileAnswer is what a hostile server answers: a status, a content
// type and a body, played as it is.
type hostileAnswer struct {
	status int
	ctype  string
	body   []byte
}

// hostileServer answers each request with the answer registered under the
// first segment of its path (so that concurrent calls do not share one).
type hostileServer struct{ answers sync.Map }

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

// reportedUsage is the usage a body reports, as a reference reader of the
// OpenAI wire reads it: of a JSON answer, its usage; of an event stream,
// the last data line's that has one. ok is false when it reports none
// that is a pair of non-negative integers.
func reportedUsage(body []byte, stream bool) (in, out int64, ok bool) {
	type usage struct {
		Usage *struct {
			Prompt     *int64 `json:"prompt_tokens"`
			Completion *int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	read := func(b []byte) (int64, int64, bool) {
		var u usage
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
		data, found := strings.CutPrefix(line, "data:")
		if !found {
			continue
		}
		if i, o, good := read([]byte(strings.TrimSpace(data))); good {
			in, out, ok = i, o, true
		}
	}
	return in, out, ok
}

// FuzzHostileAnswerThroughGoOpenAI: any answer a server sends (status,
// content type, body: JSON, an event stream, HTML, garbage) to go-openai
// through NewHTTPClient with a run budget around the default policy gives
// go-openai an error or an answer, never a panic; an answer go-openai
// reads through the transport is one it reads alone from the same server,
// with the same content; a stream go-openai reads to its end carries
// "[DONE]" or a finish reason (a cut one is an error); the run is charged
// at least the usage a successful answer reported; and no reservation is
// left held after the call.
func FuzzHostileAnswerThroughGoOpenAI(f *testing.F) {
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
		{200, "text/html", "<html><body>502 Bad Gateway</body></html>", false},
		{200, "text/html", "<html><body>502 Bad Gateway</body></html>", true},
		{200, js, `[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]`, false},
		{400, js, `[{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}]`, true},
		{200, js, strings.Replace(plain, `"prompt_tokens":7000`, `"prompt_tokens":"7000"`, 1), false},
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
	through := twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(base))
	alone := &http.Client{Transport: base}
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte, stream bool) {
		if status != 200 {
			// Failures the default policy retries (429, 5xx) would
			// wait out its backoff: one client error stands for them.
			status = 400
		}
		if strings.ContainsAny(ctype, "\r\n\x00") || len(ctype) > 100 {
			ctype = "application/json"
		}
		key := randomKey()
		srv.answers.Store(key, hostileAnswer{status, ctype, body})
		defer srv.answers.Delete(key)
		client := func(hc *http.Client) *openai.Client {
			cfg := openai.DefaultConfig("k")
			cfg.BaseURL = ts.URL + "/" + key + "/v1"
			cfg.HTTPClient = hc
			return openai.NewClientWithConfig(cfg)
		}
		// A prompt of its own per call: the cache never answers.
		req := openai.ChatCompletionRequest{Model: "gpt-4o-mini", MaxCompletionTokens: 100,
			Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "q " + key}}}
		ctx, run := middleware.StartRun(context.Background(), key)
		var got, want string
		var gotErr, wantErr error
		if stream {
			req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
			read := func(c *openai.Client, ctx context.Context) (string, error) {
				st, err := c.CreateChatCompletionStream(ctx, req)
				if err != nil {
					return "", err
				}
				defer st.Close()
				var sb strings.Builder
				for {
					r, err := st.Recv()
					if errors.Is(err, io.EOF) {
						return sb.String(), nil
					}
					if err != nil {
						return sb.String(), err
					}
					for _, ch := range r.Choices {
						if ch.Index == 0 {
							sb.WriteString(ch.Delta.Content)
						}
					}
				}
			}
			got, gotErr = read(client(through), ctx)
			want, wantErr = read(client(alone), context.Background())
		} else {
			read := func(c *openai.Client, ctx context.Context) (string, error) {
				r, err := c.CreateChatCompletion(ctx, req)
				if err != nil {
					return "", err
				}
				for _, ch := range r.Choices {
					if ch.Index == 0 {
						return ch.Message.Content, nil
					}
				}
				return "", nil
			}
			got, gotErr = read(client(through), ctx)
			want, wantErr = read(client(alone), context.Background())
		}
		if gotErr == nil {
			if wantErr != nil {
				t.Fatalf("through the transport: an answer %q; go-openai alone: %v", got, wantErr)
			}
			if got != want {
				t.Fatalf("through the transport: %q; go-openai alone: %q", got, want)
			}
			if stream && !bytes.Contains(body, []byte("[DONE]")) && !bytes.Contains(body, []byte(`"finish_reason"`)) {
				t.Fatalf("a stream without [DONE] nor a finish reason read to its end: %q", got)
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
