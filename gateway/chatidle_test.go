package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A chat completion under a team policy that sets no timeout (a file of
// its own that neither extends the default nor writes timeouts:) has
// nothing of its team's to bound it: limits.upstream_idle (10m by
// default) does, as it bounds the calls the gateway passes unpoliced. An
// upstream that never answers gets the client a 504 naming the limit, one
// that stops inside its stream a cut stream, never a call held for as
// long as the client waits; a slow but steady stream, and a call the
// team's own timeouts bound, are never cut by it.
func TestGatewayChatWithoutTeamTimeoutsIsBoundedByUpstreamIdle(t *testing.T) {
	const bare = "version: 1\nname: devops\n"
	chat := func(stream bool) string {
		body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
		if stream {
			body = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		return requestHead("/v1/chat/completions", len(body)) + body
	}
	// call sends raw and returns how the call ended for its client (the
	// status, then the body read whole or "cut" and what came) and when.
	call := func(t *testing.T, dial func() net.Conn, raw string) (string, time.Duration) {
		t.Helper()
		start := time.Now()
		c := dial()
		defer c.Close()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		ended := make(chan string, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				ended <- "error: " + err.Error()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				ended <- strconv.Itoa(resp.StatusCode) + " cut: " + string(b)
				return
			}
			ended <- strconv.Itoa(resp.StatusCode) + " " + string(b)
		}()
		select {
		case got := <-ended:
			return got, time.Since(start)
		case <-time.After(24 * time.Hour):
			t.Fatal("the call is still open after a day")
			return "", 0
		}
	}

	t.Run("never answers: a 504 after the default 10 minutes", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			synctest.Test(t, func(t *testing.T) {
				dial, _, srv, closeAll := bubbleGateway(t, bare, "", silentUpstream{})
				defer closeAll()
				got, took := call(t, dial, chat(stream))
				if !strings.HasPrefix(got, "504 ") || !strings.Contains(got, "upstream_idle") {
					t.Errorf("stream %v: answer %q, want a 504 naming limits.upstream_idle", stream, got)
				}
				if took != 10*time.Minute {
					t.Errorf("stream %v: ended after %s, want 10m", stream, took)
				}
				synctest.Wait()
				if s := spendOf(srv); !settled(s) {
					t.Errorf("stream %v: spend after the call: %s", stream, s)
				}
			})
		}
	})

	t.Run("stalls inside its stream: cut after upstream_idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dial, _, _, closeAll := bubbleGateway(t, bare, "limits: {upstream_idle: 1m}\n", &sseUpstream{chunks: 3, every: 30 * time.Second, stallAfter: 2})
			defer closeAll()
			got, took := call(t, dial, chat(true))
			if !strings.HasPrefix(got, "200 ") || strings.Contains(got, "data: [DONE]") || strings.Count(got, `"content":"piece"`) != 2 ||
				!strings.Contains(got, `"code":"timeout"`) {
				t.Errorf("answer %q, want a 200 stream of 2 pieces, then a timeout's error event, without [DONE]", got)
			}
			if took != 30*time.Second+time.Minute {
				t.Errorf("ended after %s, want 1m30s (two chunks 30s apart, then 1m of silence)", took)
			}
		})
	})

	t.Run("slow but steady stream is not cut", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dial, _, _, closeAll := bubbleGateway(t, bare, "limits: {upstream_idle: 1m}\n", &sseUpstream{chunks: 6, every: 50 * time.Second})
			defer closeAll()
			got, _ := call(t, dial, chat(true))
			if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "data: [DONE]") || strings.Count(got, `"content":"piece"`) != 6 {
				t.Errorf("answer %q, want the 6 pieces and [DONE]", got)
			}
		})
	})

	t.Run("a call its team's timeouts bound is not cut by it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// A reasoning model's call: 15 minutes of thought before the
			// answer, within the team's 20m.
			dial, _, _, closeAll := bubbleGateway(t, "version: 1\nname: devops\ntimeouts: {call: 20m}\n", "", &sseUpstream{chunks: 1, first: 15 * time.Minute})
			defer closeAll()
			got, took := call(t, dial, chat(false))
			if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"content":"piece"`) {
				t.Errorf("answer %q, want the answer", got)
			}
			if took != 15*time.Minute {
				t.Errorf("ended after %s, want 15m", took)
			}
		})
	})
}

// sseUpstream answers a chat completion after first with an OpenAI
// stream (or, to a request that asked for none, one JSON answer) of
// chunks whose content is "piece", sent every interval; with stallAfter
// > 0 it goes silent after that many.
type sseUpstream struct {
	chunks     int
	every      time.Duration
	first      time.Duration
	stallAfter int
}

func (u *sseUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if u.first > 0 {
		select {
		case <-time.After(u.first):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if !strings.Contains(string(b), `"stream":true`) {
		body := `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"piece"},"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	pr, pw := io.Pipe()
	go func() {
		chunk := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"piece"},"finish_reason":null}]}` + "\n\n"
		for i := range u.chunks {
			if u.stallAfter > 0 && i == u.stallAfter {
				<-r.Context().Done()
				pw.CloseWithError(r.Context().Err())
				return
			}
			if i > 0 {
				select {
				case <-time.After(u.every):
				case <-r.Context().Done():
					pw.CloseWithError(r.Context().Err())
					return
				}
			}
			if _, err := io.WriteString(pw, chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"+
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":6,"total_tokens":14}}`+"\n\ndata: [DONE]\n\n")
		pw.Close()
	}()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr, ContentLength: -1, Request: r}, nil
}
