package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// scriptedAttempt is one attempt's answer: its status, Content-Type and
// body, and what the upstream bills it (nil: nothing, an error answer).
type scriptedAttempt struct {
	status      int
	contentType string
	body        string
	bill        *big.Rat
}

// attemptsServer answers the attempts of each call (by the marker in its
// body) with the next of the call's scripted answers, and keeps the sum of
// the bills of the attempts it served.
type attemptsServer struct {
	mu      sync.Mutex
	scripts map[string][]scriptedAttempt
	billed  map[string]*big.Rat
	served  map[string]int
}

func (s *attemptsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	marker := string(billMarker.Find(body))
	s.mu.Lock()
	script := s.scripts[marker]
	if len(script) == 0 {
		s.mu.Unlock()
		http.Error(w, "no answer", http.StatusTeapot)
		return
	}
	a := script[0]
	s.scripts[marker] = script[1:]
	s.served[marker]++
	if a.bill != nil {
		s.billed[marker].Add(s.billed[marker], a.bill)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", a.contentType)
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

// FuzzRetriedCallChargesEveryBilledAttempt: the real go-openai client
// (through NewHTTPClient) calls through a chain that retries (three
// attempts a model, then a fallback to the same model's list) and whose
// upstream answers each attempt with one of: a 429, a 500 (neither
// billed), a 200 without choices but with a usage of random counts (a
// malformed answer the provider billed), or a whole billed answer, streamed
// or not (wiregen.NextBilledAnswer). Whatever the attempts, each call's
// cost is the sum of the bills of the attempts the upstream served,
// priced by the catalog with big.Rat arithmetic to the pico-dollar, and
// the team's spend the sum of all bills rounded up once, nothing held.
func FuzzRetriedCallChargesEveryBilledAttempt(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{1, 2, 1, 200, 100, 50, 9, 3, 1, 2, 4, 1, 0, 0, 255, 255, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{2, 6, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{0, 14, 1, 0, 0, 16, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 1, 0, 0, 16, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0})
	srv := &attemptsServer{scripts: map[string][]scriptedAttempt{}, billed: map[string]*big.Rat{}, served: map[string]int{}}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	base := &http.Transport{}
	f.Cleanup(base.CloseIdleConnections)
	quiet := slog.New(slog.DiscardHandler)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
		calls := int(next()%2) + 1
		model := wiregen.BillModels[int(next())%len(wiregen.BillModels)]
		ms := policies.Duration(time.Millisecond)
		pol := &policies.Policy{Version: 1, Name: "bill", Budget: policies.Budget{
			Team: policies.TeamBudget{Period: policies.PeriodMonthly, MaxUSD: 1 << 52}},
			Fallback: policies.Fallback{Models: []string{model},
				Retry: policies.Retry{MaxAttempts: 3, BaseDelay: ms, MaxDelay: ms}}}
		spec, _ := pol.Model(model)
		ledger, chain := newBillLedger(pol, quiet)
		cfg := goopenai.DefaultConfig("test-key")
		cfg.BaseURL = ts.URL
		cfg.HTTPClient = oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(base))
		client := goopenai.NewClientWithConfig(cfg)
		team := fmt.Sprintf("t%d", seq.Add(1))
		ctx := middleware.WithTeam(context.Background(), team)

		const maxOut = 4096
		wantSum := new(big.Rat)
		var want []*big.Rat
		for i := range calls {
			marker := fmt.Sprintf("bill-%s-%d", team, i)
			stream := next()&1 == 1
			var script []scriptedAttempt
			var shapes []string
			for range 6 { // at most two models' three attempts
				kind := next() % 4
				if kind < 2 {
					status := []int{http.StatusTooManyRequests, http.StatusInternalServerError}[kind]
					shapes = append(shapes, fmt.Sprint(status))
					script = append(script, scriptedAttempt{status: status, contentType: "application/json",
						body: `{"error":{"message":"try again","type":"server_error"}}`})
					continue
				}
				a := wiregen.NextBilledAnswer(next, maxOut)
				if a.Huge {
					continue
				}
				drawn := a.Model // each attempt is an answer of the call's model
				named := func(s string) string { return strings.ReplaceAll(s, `"model":"`+drawn+`"`, `"model":"`+model+`"`) }
				switch {
				case kind == 2 && !stream:
					// A 200 without choices, its usage billed.
					shapes = append(shapes, "no choices "+a.Usage)
					script = append(script, scriptedAttempt{status: 200, contentType: "application/json",
						body: strings.Replace(named(a.Plain), `"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],`, "", 1), bill: a.Bill(spec)})
				case stream:
					shapes = append(shapes, "stream "+a.Usage)
					script = append(script, scriptedAttempt{status: 200, contentType: "text/event-stream", body: named(a.Events), bill: a.Bill(spec)})
				default:
					shapes = append(shapes, "answer "+a.Usage)
					script = append(script, scriptedAttempt{status: 200, contentType: "application/json", body: named(a.Plain), bill: a.Bill(spec)})
				}
				if kind == 3 {
					break
				}
			}
			srv.mu.Lock()
			srv.scripts[marker], srv.billed[marker] = script, new(big.Rat)
			srv.mu.Unlock()

			req := goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxOut,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks. " + marker}}}
			err := wiregen.GoOpenAIChat(ctx, client, req, stream)
			srv.mu.Lock()
			bill, served := srv.billed[marker], srv.served[marker]
			delete(srv.scripts, marker)
			delete(srv.billed, marker)
			delete(srv.served, marker)
			srv.mu.Unlock()
			_ = err // an error when no attempt answered, or go-openai's own on a count it cannot read
			t.Logf("call %d (%s, stream %v): %d attempts served of %q: %v", i, model, stream, served, shapes, err)
			want = append(want, bill)
			wantSum.Add(wantSum, bill)
		}

		ledger.check(t, pol, team, want, wantSum, false, "the upstream billed its attempts")
	})
}
