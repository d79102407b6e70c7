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

// TestInProcessCloseCutsACallerThatStopsReading: Close cuts, at once, an
// in-process call whose caller neither reads nor closes its body (as it
// cuts a call over a socket), not only when the write timeout passes on
// the write the caller does not read: the call ends and is settled, and
// the caller's next read fails.
func TestInProcessCloseCutsACallerThatStopsReading(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat json", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`})
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, logs, srv, closeAll := bubbleGateway(t, bubbleDevops, "limits: {write_timeout: 10m}\n", nil)
				defer closeAll()
				hc := &http.Client{Transport: srv.Transport()}
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://tokenwise.invalid"+call.path, strings.NewReader(call.body))
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
				// The caller reads no more, and keeps the body open.
				synctest.Wait()
				closed := time.Now()
				go func() { _ = srv.Close() }()
				synctest.Wait()
				if !strings.Contains(logs.String(), `"call_id"`) {
					t.Fatalf("Close left the call of a caller that stopped reading in flight: nothing logged; the team's spend: %s", spendOf(srv))
				}
				if !settled(spendOf(srv)) {
					t.Errorf("after Close, the team's spend holds something: %s", spendOf(srv))
				}
				if el := time.Since(closed); el != 0 {
					t.Errorf("the call ended %v after Close, want at once", el)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err == nil {
					t.Error("the rest of a cut answer reads as complete")
				}
			})
		})
	}
}
