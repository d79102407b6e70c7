package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A client of the in-process transport (Server.Transport) that reads part
// of an answer and then stops reading, without closing the body, or
// cancels its request's context without closing it, does not hold the
// handler for good: the pipe the answer goes through has the gateway's
// write deadline, as a socket has (TestGatewayClientThatStopsReadingEndsItsCall),
// and a done request context cuts the body, as net/http's transport
// does. The call ends — logged, its budget hold settled — and the
// caller's next read fails, never with io.EOF.
func TestInProcessClientThatStopsReadingEndsItsCall(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat json", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`})
	for _, cancelled := range []bool{false, true} {
		for _, call := range calls {
			name := call.name + "/stops reading"
			if cancelled {
				name = call.name + "/context cancelled"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					_, logs, srv, closeAll := bubbleGateway(t, bubbleDevops, "", nil)
					defer closeAll()
					hc := &http.Client{Transport: srv.Transport()}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://tokenwise.invalid"+call.path, strings.NewReader(call.body))
					req.Header.Set("Authorization", "Bearer "+devopsKey)
					req.Header.Set("Content-Type", "application/json")
					resp, err := hc.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("status %d", resp.StatusCode)
					}
					if _, err := io.ReadFull(resp.Body, make([]byte, 300_000)); err != nil {
						t.Fatal(err)
					}
					if cancelled {
						cancel()
					}
					// The client reads no more, and keeps the body open.
					time.Sleep(5 * time.Minute)
					synctest.Wait()
					if !strings.Contains(logs.String(), `"call_id"`) {
						t.Fatalf("5 minutes after an in-process client stopped reading, its call (timeouts call 5s, idle 1s) has not ended: nothing logged; the team's spend: %s", spendOf(srv))
					}
					if !settled(spendOf(srv)) {
						t.Errorf("after the call ended, the team's spend holds something: %s", spendOf(srv))
					}
					_, err = io.Copy(io.Discard, resp.Body)
					if err == nil {
						t.Error("the rest of a cut answer reads as complete")
					}
				})
			})
		}
	}
}
