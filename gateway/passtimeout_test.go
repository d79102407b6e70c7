package gateway_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// slowResponses is an in-memory Responses and embeddings upstream whose
// pace the request's input says: "hang" sends nothing until the call is
// cancelled; "late headers" waits 10 s before it answers; "late events"
// sends its headers, then waits 10 s before the first event; "pause"
// sends two events, then waits 10 s; "drip" sends an event a second for
// 40 s; "together" is answered when a second "together" call comes, both
// at once; "fails, gpt-4o slow" is a 503 after 3 s but on gpt-4o, which
// answers after 4 s; anything else is answered at once. A stream that is not cut ends with its final event.
// An input "<pace> unless gpt-4o" is that pace for any model but gpt-4o,
// which answers it at once.
func slowResponses() http.Handler {
	var mu sync.Mutex
	var waiting chan struct{} // "together": the first call waits on it for the second
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model    string `json:"model"`
			Input    any    `json:"input"`
			Stream   bool   `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		input := fmt.Sprint(req.Input)
		if len(req.Messages) > 0 && req.Messages[0].Content == "o3 thinks" || input == "o3 thinks" {
			// o3 answers after 40 s (a chat call at once after them);
			// any other model fails at once.
			if req.Model != "o3" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
				return
			}
			select {
			case <-time.After(40 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			// A chat call: "hang" in its first message hangs; any other is
			// answered at once.
			if len(req.Messages) > 0 && req.Messages[0].Content == "hang" {
				<-r.Context().Done()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"`+cmp.Or(req.Model, "gpt-4o-mini")+
				`","choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`)
			return
		}
		if pace, ok := strings.CutSuffix(input, " unless gpt-4o"); ok {
			input = pace
			if req.Model == "gpt-4o" {
				input = "fine"
			}
		}
		wait := func(d time.Duration) bool {
			select {
			case <-time.After(d):
				return true
			case <-r.Context().Done():
				return false
			}
		}
		if strings.HasSuffix(r.URL.Path, "/embeddings") {
			if input == "hang" {
				<-r.Context().Done()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":1,"total_tokens":1}}`)
			return
		}
		final := `{"id":"resp_1","object":"response","status":"completed","model":"` + cmp.Or(req.Model, "gpt-4o-mini") + `","output":[{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"output_text","text":"done","annotations":[]}]}],"usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}}`
		switch input {
		case "hang":
			<-r.Context().Done()
			return
		case "fails, gpt-4o slow": // gpt-4o answers after 4 s; any other model fails after 3 s
			if req.Model == "gpt-4o" {
				if !wait(4 * time.Second) {
					return
				}
				break
			}
			if wait(3 * time.Second) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
			}
			return
		case "together": // two calls answered at once: the first waits for the second
			mu.Lock()
			if waiting == nil {
				ch := make(chan struct{})
				waiting = ch
				mu.Unlock()
				select {
				case <-ch:
				case <-r.Context().Done():
					return
				}
			} else {
				close(waiting)
				waiting = nil
				mu.Unlock()
			}
		case "late headers":
			if !wait(10 * time.Second) {
				return
			}
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, final)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		f.Flush()
		event := func(typ, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, data)
			f.Flush()
		}
		delta := func(s string) {
			event("response.output_text.delta", `{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"`+s+`"}`)
		}
		switch input {
		case "late events":
			if !wait(10 * time.Second) {
				return
			}
		case "pause":
			delta("a")
			delta("b")
			if !wait(10 * time.Second) {
				return
			}
		case "drip":
			for range 40 {
				delta("x")
				if !wait(time.Second) {
					return
				}
			}
		}
		event("response.completed", `{"type":"response.completed","response":`+final+`}`)
	})
}

// timeoutEnv is a gateway in front of slowResponses on a pipe listener,
// inside the caller's synctest bubble, the devops team's policy pol; its
// env's client reaches it through the pipe, its logs are kept.
func timeoutEnv(t *testing.T, pol string) *env {
	t.Helper()
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": pol}
	logs := &syncBuffer{}
	srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", pols, ""), openaitest.NewTransport(slowResponses()),
		slog.New(slog.NewJSONHandler(logs, nil)))
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return &env{url: "http://gateway", client: &http.Client{Transport: tr}, logs: logs}
}

// passCall is what a client read of a passed-through call.
type passCall struct {
	status  int
	code    string   // the error's code: the JSON answer's, or a stream's error event's
	message string   // the error's message
	events  []string // a stream's event types, in order
	took    time.Duration
}

// callPass sends body to path as the devops team (hdr: more headers, as
// env.do takes them) and reads the answer to its end, a stream event by
// event.
func callPass(t *testing.T, e *env, path, body string, hdr ...string) passCall {
	t.Helper()
	start := time.Now()
	resp := e.do(t, http.MethodPost, path, devopsKey, body, hdr...)
	out := passCall{status: resp.StatusCode}
	readError := func(data []byte) {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Error   struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			out.code, out.message = cmp.Or(e.Error.Code, e.Code), cmp.Or(e.Error.Message, e.Message)
		}
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			readError(data)
		}
		out.took = time.Since(start)
		return out
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if typ, ok := strings.CutPrefix(line, "event: "); ok {
			out.events = append(out.events, typ)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && len(out.events) > 0 && out.events[len(out.events)-1] == "error" {
			readError([]byte(data))
		}
	}
	out.took = time.Since(start)
	return out
}

// TestGatewayBoundsPassedCallsByTheTeamsTimeouts: a Responses or
// embeddings call through the gateway is bounded by its team's timeouts
// and its run's deadline, as a chat call is by the chain: a call whose
// answer has not begun when its call timeout (or the run's deadline)
// passes is the client's 504 "timeout", charged its input (sent, it was
// billed by the provider: as the chain bills a chat attempt that timed
// out), and so is a stream whose first event (its headers came, SSE
// comments maybe) comes later than first_token; a
// stream that goes quiet
// for longer than idle, or that is still streaming when the call timeout
// passes ends with an error event naming the limit, charged its
// reservation as a cut stream is; an answer within the limits is
// untouched (a client that reads slowly does not count against idle:
// TestWatchedBodyCountsTheUpstreamsTimeOnly).
// (Fake time: synctest.)
func TestGatewayBoundsPassedCallsByTheTeamsTimeouts(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	const pol = "version: 1\nname: devops\ntimeouts: {call: 30s, first_token: 5s, idle: 2s}\nlimits: {run_timeout: 1h}\n" +
		"budget: {team: {period: monthly, max_usd: 1}}\n"
	responses := func(input string, stream bool) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","input":%q,"stream":%v,"max_output_tokens":100}`, input, stream)
	}
	for _, c := range []struct {
		name, path, body string
		status           int
		code, message    string
		took             time.Duration
		lastEvent        string // a stream's last event
		charged          bool   // the reservation charged (else released, or the usage settled)
	}{
		{"JSON answer hangs", "/v1/responses", responses("hang", false), 504, "timeout", "call timed out after 30s", 30 * time.Second, "", false},
		{"JSON answer late", "/v1/responses", responses("late headers", false), 200, "", "", 10 * time.Second, "", false},
		{"stream's headers late", "/v1/responses", responses("late headers", true), 504, "timeout", "no first token in time after 5s", 5 * time.Second, "", false},
		{"stream's first event late", "/v1/responses", responses("late events", true), 504, "timeout", "no first token in time after 5s", 5 * time.Second, "", false},
		{"stream pauses", "/v1/responses", responses("pause", true), 200, "timeout", "stream idle too long after 2s", 2 * time.Second, "error", true},
		{"stream outlasts the call", "/v1/responses", responses("drip", true), 200, "timeout", "call timed out after 30s", 30 * time.Second, "error", true},
		{"stream within the limits", "/v1/responses", responses("fine", true), 200, "", "", 0, "response.completed", false},
		{"embeddings hang", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hang"}`, 504, "timeout", "call timed out after 30s", 30 * time.Second, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, pol)
				got := callPass(t, e, c.path, c.body)
				if got.status != c.status || got.code != c.code || !strings.Contains(got.message, c.message) {
					t.Errorf("status %d, code %q, message %q; want %d, %q, %q", got.status, got.code, got.message, c.status, c.code, c.message)
				}
				if got.took != c.took {
					t.Errorf("took %v, want %v", got.took, c.took)
				}
				if last := ""; c.lastEvent != "" {
					if n := len(got.events); n > 0 {
						last = got.events[n-1]
					}
					if last != c.lastEvent {
						t.Errorf("stream's events %v, want the last %q", got.events, c.lastEvent)
					}
				}
				synctest.Wait()
				logs := e.logs.String()
				if timedOut := strings.Contains(logs, "passed-through call timed out"); timedOut != (c.code == "timeout") ||
					timedOut && !strings.Contains(logs, c.message) {
					t.Errorf("the gateway's logs say timed out: %v, want %v (%s):\n%s", timedOut, c.code == "timeout", c.message, logs)
				}
				sp := e.spend(t)
				switch {
				case c.charged && sp.SpentTokens < 100:
					t.Errorf("spent %d tokens, want the reservation (100 output tokens and the input)", sp.SpentTokens)
				case !c.charged && c.status != 200 && (sp.SpentTokens <= 0 || sp.SpentTokens >= 100):
					// Sent, and timed out before its answer: the provider
					// bills the input it received, as the chain bills a
					// chat attempt that timed out.
					t.Errorf("spent %d tokens, want the call's input alone (not its reservation, nor nothing)", sp.SpentTokens)
				case !c.charged && c.status == 200 && c.path == "/v1/responses" && sp.SpentTokens != 12:
					t.Errorf("spent %d tokens, want the answer's usage, 12", sp.SpentTokens)
				}
			})
		})
	}

	// With a fallback model, an attempt that passes call or first_token
	// before its answer begins moves on, as a provider's timeout does in
	// the chain: the fallback model's answer, after the limit; charged at
	// its usage (gpt-4o: 10 input tokens at $2.50/M, 2 output at $10/M),
	// and the timed-out attempt at its input, as the chain bills it.
	t.Run("fallback after a timeout", func(t *testing.T) {
		for _, c := range []struct {
			name string
			body string
			took time.Duration
		}{
			{"JSON answer hangs", responses("hang unless gpt-4o", false), 30 * time.Second},
			{"stream's headers late", responses("late headers unless gpt-4o", true), 5 * time.Second},
			// Its headers at once, its first event late: no answer yet.
			{"stream's first event late", responses("late events unless gpt-4o", true), 5 * time.Second},
		} {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, pol+"fallback: {models: [gpt-4o]}\n")
				got := callPass(t, e, "/v1/responses", c.body)
				if got.status != 200 || got.code != "" || got.took != c.took || len(got.events) > 0 && got.events[len(got.events)-1] != "response.completed" {
					t.Errorf("%s: %+v, want gpt-4o's answer after %v", c.name, got, c.took)
				}
				synctest.Wait()
				sp := e.spend(t)
				in := sp.SpentTokens - 12 // the timed-out attempt's input, at gpt-4o-mini's $0.15/M
				if want := ceilMicroPico(45_000_000 + in*150_000); in <= 0 || sp.SpentUSD != fmt.Sprintf("0.%06d", want) || sp.ReservedUSD != "0.000000" {
					t.Errorf("%s: spend %+v, want gpt-4o's usage, $0.000045, and the timed-out attempt's input of %d tokens: $0.%06d", c.name, sp, in, want)
				}
				if logs := e.logs.String(); strings.Contains(logs, "timed out") || !strings.Contains(logs, `"model":"gpt-4o","models_tried":2`) {
					t.Errorf("%s: the call that fell back is logged as timed out, or not as answered by gpt-4o, the second model tried:\n%s", c.name, logs)
				}
			})
		}
	})

	// With fallback.hedge, a call that is not a stream and has no answer
	// after the hedge's delay is sent to the next model too; the first
	// answer is passed on, and the other attempt, cancelled, is charged its
	// input (at its model's price) beside the answer's usage, as the
	// chain's hedge bills both. A stream is not hedged.
	t.Run("hedge", func(t *testing.T) {
		hedged := pol + "fallback: {models: [gpt-4o], hedge: {enabled: true, delay: 2s}}\n"
		for _, c := range []struct {
			name   string
			body   string
			took   time.Duration
			model  string // the model that answered
			usage  int64  // its usage's price, in pico-dollars
			loser  int64  // the micro-dollars per million input tokens of the attempt that lost (0: none)
			logged string
		}{
			// gpt-4o-mini's answer is 10 s late, gpt-4o's comes at once:
			// the hedge, sent at 2 s, answers.
			{"the hedge answers", responses("late headers unless gpt-4o", false), 2 * time.Second, "gpt-4o", 45_000_000, 150_000, `"model":"gpt-4o","models_tried":2`},
			// Both are 10 s late: the first model, sent 2 s earlier, answers.
			{"the first model answers", responses("late headers", false), 10 * time.Second, "gpt-4o-mini", 2_700_000, 2_500_000, `"model":"gpt-4o-mini","models_tried":2`},
			// A stream is not hedged: its first model's headers are late,
			// and it falls back when first_token (5 s) passes (the
			// timed-out attempt charged its input).
			{"a stream", responses("late headers unless gpt-4o", true), 5 * time.Second, "gpt-4o", 45_000_000, 150_000, `"model":"gpt-4o","models_tried":2`},
		} {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, hedged)
				got := callPass(t, e, "/v1/responses", c.body, gateway.RunIDHeader, "run-h")
				if got.status != 200 || got.code != "" || got.took != c.took {
					t.Errorf("%s: %+v, want %s's answer after %v", c.name, got, c.model, c.took)
				}
				synctest.Wait()
				sp := e.spend(t)
				in := sp.SpentTokens - 12 // what the attempt that lost was charged (the answer's usage: 12 tokens)
				// The answer's usage and the input of the attempt that lost,
				// at its price: exact, rounded up once to a micro-dollar.
				want := ceilMicroPico(c.usage + in*c.loser)
				if c.loser > 0 && in <= 0 || c.loser == 0 && in != 0 || sp.SpentUSD != fmt.Sprintf("0.%06d", want) || sp.ReservedUSD != "0.000000" {
					t.Errorf("%s: spend %+v, want %s's usage and the other attempt's input of %d tokens: $0.%06d", c.name, sp, c.model, in, want)
				}
				if logs := e.logs.String(); !strings.Contains(logs, c.logged) {
					t.Errorf("%s: the call is not logged as answered by %s, the second model tried:\n%s", c.name, c.model, logs)
				}
				// The run's report has the call once, at what the team was
				// charged for both attempts, each under its own model.
				resp := e.do(t, http.MethodGet, "/v1/runs/run-h", devopsKey, "")
				defer resp.Body.Close()
				var rep gateway.RunReport
				if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
					t.Fatal(err)
				}
				var byModel int64
				for _, m := range rep.ByModel {
					byModel += m.CostPico
				}
				// (The ledger and the report both sum the exact costs.)
				if rep.Calls != 1 || rep.CostPico != byModel || ceilMicroPico(rep.CostPico) != want || rep.ByModel[c.model].OutputTokens != 2 ||
					c.loser > 0 && len(rep.ByModel) != 2 {
					t.Errorf("%s: run report %+v, want one call costing $0.%06d, each attempt under its model", c.name, rep.RunFigures, want)
				}
			})
		}
	})

	// The first model's retry, while the hedge runs, does not end the
	// hedge: gpt-4o-mini fails at 3 s and is retried; gpt-4o, sent at 2 s,
	// answers at 6 s.
	t.Run("hedge beside a retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, pol+"fallback: {models: [gpt-4o], hedge: {enabled: true, delay: 2s}, retry: {max_attempts: 2, base_delay: 100ms, max_delay: 100ms}}\n")
			got := callPass(t, e, "/v1/responses", responses("fails, gpt-4o slow", false))
			if got.status != 200 || got.code != "" || got.took != 6*time.Second {
				t.Fatalf("%+v, want gpt-4o's answer after 6s", got)
			}
			if logs := e.logs.String(); !strings.Contains(logs, `"model":"gpt-4o"`) {
				t.Errorf("the call is not logged as answered by gpt-4o:\n%s", logs)
			}
		})
	})

	// When both attempts of a hedge answer at once, one is passed on and
	// the other is charged too: at its usage when its answer was read
	// before the first was passed on, else its input, cancelled. Whichever
	// happened, the team is charged one of those sums, nothing more.
	t.Run("hedge both answer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, pol+"fallback: {models: [gpt-4o], hedge: {enabled: true, delay: 2s}}\n")
			// The ledger sums the calls' exact costs and rounds up once:
			// the exact sums the calls so far may have come to.
			var tokens int64
			sums := map[int64]bool{0: true}
			for i := range 10 {
				got := callPass(t, e, "/v1/responses", responses("together", false))
				if got.status != 200 || got.code != "" || got.took != 2*time.Second {
					t.Fatalf("call %d: %+v, want an answer after the hedge's 2s", i, got)
				}
				synctest.Wait()
				sp := e.spend(t)
				var usd int64
				if _, err := fmt.Sscanf(sp.SpentUSD, "0.%06d", &usd); err != nil {
					t.Fatal(err)
				}
				dTok := sp.SpentTokens - tokens
				tokens = sp.SpentTokens
				in := dTok - 12 // the input of a cancelled attempt (beside the 12 tokens of the answer)
				// gpt-4o-mini's usage costs 2.7 µ$, gpt-4o's 45 µ$; an input
				// at $0.15/M (gpt-4o-mini) or $2.50/M (gpt-4o).
				var costs []int64
				if dTok == 24 {
					costs = append(costs, 47_700_000) // both answers
				}
				if in > 0 {
					costs = append(costs, 45_000_000+in*150_000, 2_700_000+in*2_500_000) // an answer and the other's input
				}
				next := map[int64]bool{}
				for sum := range sums {
					for _, c := range costs {
						if ceilMicroPico(sum+c) == usd {
							next[sum+c] = true
						}
					}
				}
				if len(next) == 0 || sp.ReservedUSD != "0.000000" {
					t.Fatalf("call %d: spent %d µ$ after %d tokens (reserved %s): neither both answers nor an answer and the other's input", i, usd, dTok, sp.ReservedUSD)
				}
				sums = next
			}
		})
	})

	// An attempt's clocks start when it is sent: a call that waits 60 s for
	// its rate limit's admission (on_limit: wait) is not past its 30 s.
	t.Run("rate limit wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, pol+"rate_limits: {models: {gpt-4o-mini: {rpm: 1}}, on_limit: wait, max_wait: 2m}\n")
			for i, want := range []time.Duration{0, time.Minute} {
				if got := callPass(t, e, "/v1/responses", responses("fine", false)); got.status != 200 || got.took != want {
					t.Errorf("call %d: %+v, want an answer after %v", i, got, want)
				}
			}
		})
	})

	t.Run("run deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, "version: 1\nname: devops\ntimeouts: {call: 35s}\nlimits: {run_timeout: 40s}\n")
			if got := callPass(t, e, "/v1/responses", responses("late headers", false), gateway.RunIDHeader, "run-1"); got.status != 200 {
				t.Fatalf("the run's first call: %+v", got)
			}
			// 10 s of the run's 40 are gone: the second call's answer,
			// which never comes, is cut at the run's deadline, not at its
			// own 35 s.
			got := callPass(t, e, "/v1/responses", responses("hang", false), gateway.RunIDHeader, "run-1")
			if got.status != 504 || got.code != "timeout" || !strings.Contains(got.message, "run deadline exceeded after 40s") || got.took != 30*time.Second {
				t.Errorf("a call past the run's deadline: %+v, want a 504 after the run's remaining 30s", got)
			}
		})
	})
}

// ceilMicroPico rounds pico-dollars up to micro-dollars.
func ceilMicroPico(pico int64) int64 { return (pico + 999_999) / 1_000_000 }

// TestGatewayResponsesCallEndsAtTheTotalTimeout: timeouts.total bounds a
// Responses call through the gateway — all its attempts, its fallbacks
// included — as it bounds a chat call: a hung upstream on either path ends
// at the total (here 45s: a first attempt's call timeout of 30s, then a
// fallback cut short), with the same error, the client's 504 "timeout"
// naming the total. Before, the Responses path ignored total: the
// fallback got its own 30s and the call ended after 60s, on its call
// timeout. (Fake time: synctest.)
func TestGatewayResponsesCallEndsAtTheTotalTimeout(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	const pol = "version: 1\nname: devops\ntimeouts: {call: 30s, total: 45s}\nfallback: {models: [gpt-4o]}\n"
	const want = "call with its retries and fallbacks timed out after 45s"
	for _, c := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hang"}],"max_tokens":100}`},
		{"responses", "/v1/responses", `{"model":"gpt-4o-mini","input":"hang","max_output_tokens":100}`},
		{"responses stream", "/v1/responses", `{"model":"gpt-4o-mini","input":"hang","stream":true,"max_output_tokens":100}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := timeoutEnv(t, pol)
				got := callPass(t, e, c.path, c.body)
				if got.status != http.StatusGatewayTimeout || got.code != "timeout" || !strings.Contains(got.message, want) || got.took != 45*time.Second {
					t.Errorf("status %d, code %q, message %q after %v; want 504, \"timeout\", %q after 45s", got.status, got.code, got.message, got.took, want)
				}
			})
		})
	}
}
