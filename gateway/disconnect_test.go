package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/gateway"
)

// hangingUpstream streams three pieces of text of a chat completion or a
// Responses answer, then waits for its request's context to end, which it
// reports on gone; it never sends its final chunk or event.
func hangingUpstream(t *testing.T, gone chan<- string) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := range 3 {
			if strings.HasSuffix(r.URL.Path, "/responses") {
				if i == 0 {
					fmt.Fprint(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4o-mini\",\"output\":[],\"usage\":null}}\n\n")
				}
				fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":%d,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"word%d \"}\n\n", i+1, i)
			} else {
				fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word%d \"},\"finish_reason\":null}]}\n\n", i)
			}
			f.Flush()
		}
		<-r.Context().Done()
		gone <- r.URL.Path
	}))
	t.Cleanup(up.Close)
	return up
}

// serveLogged serves the gateway of cfgPath on a TCP port, its logs kept.
func serveLogged(t *testing.T, cfgPath string) *env {
	t.Helper()
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &env{srv: srv, url: "http://" + l.Addr().String(), logs: logs, cfgPath: cfgPath}
}

// TestGatewayClientGoneMidStream: a client that goes away in the middle
// of a stream — go-openai's stream closed, or a raw HTTP client closing
// its connection — on chat completions and on the Responses API: the
// upstream request is cancelled at once (the upstream, which would wait
// forever, sees its context end), the call is charged its input and the
// output streamed (not its reservation, not nothing), nothing stays held,
// and it is logged and counted as the client's going away, not as a
// failure of the upstream.
func TestGatewayClientGoneMidStream(t *testing.T) {
	for _, c := range []struct{ name, path, body string }{
		{"chat go-openai", "/v1/chat/completions", ""},
		{"chat raw", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Tell me a story."}]}`},
		{"responses raw", "/v1/responses", `{"model":"gpt-4o-mini","stream":true,"input":"Tell me a story."}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			gone := make(chan string, 1)
			up := hangingUpstream(t, gone)
			t.Setenv(upstreamEnv, upstreamKey)
			e := serveLogged(t, writeFiles(t, up.URL+"/v1", defaultPolicies, ""))
			if c.body == "" {
				cfg := goopenai.DefaultConfig(devopsKey)
				cfg.BaseURL = e.url + "/v1"
				st, err := goopenai.NewClientWithConfig(cfg).CreateChatCompletionStream(t.Context(), goopenai.ChatCompletionRequest{
					Model: "gpt-4o-mini", Stream: true, Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Tell me a story."}}})
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					if _, err := st.Recv(); err != nil {
						t.Fatal(err)
					}
				}
				st.Close()
			} else {
				conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n%s: gone-run\r\nContent-Length: %d\r\n\r\n%s",
					c.path, devopsKey, gateway.RunIDHeader, len(c.body), c.body)
				br := bufio.NewReader(conn)
				deltas := 0
				for deltas < 3 {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("read %d deltas: %v", deltas, err)
					}
					if strings.Contains(line, "word") {
						deltas++
					}
				}
				conn.Close()
			}
			if p := <-gone; p != c.path {
				t.Errorf("the upstream's request of %s ended", p)
			}
			// Shutdown waits for the call's handler to end: what it logs
			// and counts is then written.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			get := func(path string) []byte {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Authorization", "Bearer "+devopsKey)
				e.srv.Handler().ServeHTTP(rec, req)
				return rec.Body.Bytes()
			}
			var sp gateway.Spend
			if err := json.Unmarshal(get("/v1/spend"), &sp); err != nil {
				t.Fatal(err)
			}
			// Its input and the three pieces streamed: a few dozen tokens;
			// its reservation was gpt-4o-mini's whole output, 16,384.
			if sp.ReservedUSD != "0.000000" || sp.InFlightCalls != 0 || sp.SpentTokens <= 3 || sp.SpentTokens >= 100 {
				t.Errorf("spend %+v: want the input and the output streamed charged (3 < tokens < 100), nothing held", sp)
			}
			if c.body != "" {
				var rep gateway.RunReport
				if err := json.Unmarshal(get("/v1/runs/gone-run"), &rep); err != nil {
					t.Fatal(err)
				}
				if rep.Calls != 1 || rep.FailedCalls != 1 || rep.EstimatedCalls != 1 || rep.InputTokens == 0 || rep.OutputTokens < 3 ||
					rep.InputTokens+rep.OutputTokens != sp.SpentTokens {
					t.Errorf("run report %+v: want one failed call of its input and the output streamed, an estimate", rep.RunFigures)
				}
			}
			metrics := string(get("/metrics"))
			for _, o := range []string{"ok", "upstream_error", "other", "gateway_error"} {
				if strings.Contains(metrics, `outcome="`+o+`"`) {
					t.Errorf("the call was counted under %q, want client_gone", o)
				}
			}
			if !strings.Contains(metrics, `outcome="client_gone"} 1`) {
				t.Errorf("the call was not counted under client_gone")
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "the client went away") || strings.Contains(logs, "stream failed") || strings.Contains(logs, `"msg":"tokenwise/gateway: passed through"`) {
				t.Errorf("logs:\n%s\nwant the call logged as cut by its client going away, never as failed or passed through", logs)
			}
		})
	}
}
