package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A streamed Responses call through the team's routing.cascade: the
// stream of a model that is not the cascade's last is held back until it
// ends, to be checked. Its reading is bounded by the team's timeouts as a
// stream passed on is: first_token until its first event, idle between
// two. A draft whose first event comes at once and whose events come
// steadily (one every 500ms, for 5s; first_token and idle 2s) is read
// whole, checked and passed on; before, the first-token clock, which only
// the read of an answer passed on stops, ran on through the held read
// and cut the draft 2s after its send, and the client got it ended by a
// "no first token in time" error event.
func TestGatewayResponsesCascadeHeldStreamKeepsItsClocks(t *testing.T) {
	for _, c := range []struct {
		name     string
		up       steadyResponses
		want     string        // in the stream's last bytes
		ends     time.Duration // when the stream ends, after the call's send
		complete bool
	}{
		{"steady", steadyResponses{every: 500 * time.Millisecond, deltas: 9}, `"type":"response.completed"`, 5 * time.Second, true},
		// Three deltas, then nothing: the idle clock ends the held read
		// 2s after the last event (not the first-token clock at 2s,
		// nor the call's at 1m).
		{"stalled", steadyResponses{every: 500 * time.Millisecond, deltas: 9, stallAfter: 3}, "stream idle too long after 2s", 3500 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pol := "version: 1\nname: devops\ntimeouts: {call: 1m, first_token: 2s, idle: 2s}\nbudget:\n  team: {period: monthly, max_usd: 1}\nrouting:\n  cascade: {models: [gpt-4o-mini, gpt-4o]}\n"
				dial, _, srv, closeAll := bubbleGateway(t, pol, "", c.up)
				defer closeAll()
				conn := dial()
				defer conn.Close()
				body := `{"model":"gpt-4o-mini","stream":true,"input":"Check the disks."}`
				start := time.Now()
				if _, err := io.WriteString(conn, requestHead("/v1/responses", len(body))+body); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("the stream's read: %v", err)
				}
				took := time.Since(start)
				tail := string(got[max(0, len(got)-400):])
				if resp.StatusCode != http.StatusOK || !strings.Contains(tail, c.want) || strings.Contains(string(got), "event: error") == c.complete {
					t.Fatalf("a draft streamed an event every 500ms (first_token and idle 2s): %d, ends %q; want %q", resp.StatusCode, tail, c.want)
				}
				if took != c.ends {
					t.Errorf("the stream ended after %v, want %v", took, c.ends)
				}
				synctest.Wait()
				if !settled(spendOf(srv)) {
					t.Errorf("the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}

// steadyResponses answers a streamed Responses call with a stream of the
// model asked for: response.created at once, then deltas output_text
// deltas and response.completed, one event every every (or, with
// stallAfter, nothing after that many deltas).
type steadyResponses struct {
	every  time.Duration
	deltas int
	// stallAfter, when positive, is the number of deltas after which the
	// stream sends nothing more, until the call's context ends.
	stallAfter int
}

func (s steadyResponses) RoundTrip(r *http.Request) (*http.Response, error) {
	var req struct {
		Model string `json:"model"`
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	_ = json.Unmarshal(b, &req)
	pr, pw := io.Pipe()
	stop := context.AfterFunc(r.Context(), func() { pw.CloseWithError(r.Context().Err()) })
	resp := func(status, usage string) string {
		return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"` + req.Model + `",` +
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
			`"usage":` + usage + `}`
	}
	go func() {
		defer func() {
			// Stopped before it ran (the call's context ended as this
			// goroutine returned), the AfterFunc would not close the
			// pipe, and the gateway's read would wait for ever.
			stop()
			if err := r.Context().Err(); err != nil {
				pw.CloseWithError(err)
			}
		}()
		w := func(s string) bool { _, err := io.WriteString(pw, s); return err == nil }
		wait := func() bool {
			select {
			case <-r.Context().Done():
				return false
			case <-time.After(s.every):
				return true
			}
		}
		if !w("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + resp("in_progress", "null") + "}\n\n") {
			return
		}
		for i := 1; i <= s.deltas; i++ {
			if i == s.stallAfter+1 && s.stallAfter > 0 {
				<-r.Context().Done()
				return
			}
			if !wait() || !w("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":"+strconv.Itoa(i)+
				",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"x\"}\n\n") {
				return
			}
		}
		if !wait() {
			return
		}
		w("event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":" + strconv.Itoa(s.deltas+1) + ",\"response\":" +
			resp("completed", `{"input_tokens":10,"output_tokens":9,"total_tokens":19}`) + "}\n\n")
		pw.Close()
	}()
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Body: pr, ContentLength: -1, Request: r}, nil
}
