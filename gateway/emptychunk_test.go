package gateway_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayEmptyChunksAreNoActivity: an upstream chat stream of chunks
// that carry nothing (no content, tool call, usage or finish reason:
// {"choices":[]}, an empty delta), one every 500ms, neither meets the
// team's timeouts.first_token nor resets its timeouts.idle: the call ends
// at first_token (1s) or, after a chunk of content, at idle (1s), with
// the stream's error event (the empty chunks were passed on: the stream
// had begun). Before, every empty chunk counted
// as activity, and a team without a call limit held the stream for as
// long as the upstream sent them.
func TestGatewayEmptyChunksAreNoActivity(t *testing.T) {
	const (
		empty   = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[]}`
		nothing = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":null}]}`
		content = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	)
	for _, tc := range []struct {
		name, head, want string
	}{
		{"before the first token", "", "no first token in time"},
		{"after a token", content, "stream idle too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var raw [][]byte
				if tc.head != "" {
					raw = append(raw, []byte("data: "+tc.head+"\n\n"))
				}
				for i := range 2000 {
					raw = append(raw, []byte("data: "+[]string{empty, nothing}[i%2]+"\n\n"))
				}
				dial, _, srv, closeAll := bubbleGatewayReply(t, "version: 1\nname: devops\ntimeouts: {first_token: 1s, idle: 1s}\n", "", nil,
					openaitest.Reply{Raw: raw, ChunkLatency: 500 * time.Millisecond})
				defer closeAll()
				c := dial()
				defer c.Close()
				call := streamCalls[0]
				if _, err := io.WriteString(c, requestHead(call.path, len(call.body))+call.body); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				ended := make(chan string, 1)
				var took time.Duration
				go func() {
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						ended <- err.Error()
						return
					}
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					took = time.Since(start)
					ended <- strconv.Itoa(resp.StatusCode) + " " + string(b[max(0, len(b)-400):])
				}()
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				select {
				case got := <-ended:
					if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, tc.want) || strings.Contains(got, "[DONE]") {
						t.Errorf("the stream ended with %q, want the %q limit's error event", got, tc.want)
					}
					if took < time.Second || took > 1200*time.Millisecond {
						t.Errorf("the stream ended after %v, want its limit's 1s", took)
					}
				default:
					t.Fatalf("a stream of empty chunks is still open after 10 minutes (first_token 1s, idle 1s)")
				}
				if !settled(spendOf(srv)) {
					t.Errorf("the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}
