package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// billServer answers each chat call with the answer stored under the
// request's "user" member, as JSON or as an event stream.
type billServer struct{ answers sync.Map }

func (s *billServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		User   string `json:"user"`
		Stream bool   `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, ok := s.answers.Load(req.User)
	if !ok {
		http.Error(w, "no answer", http.StatusTeapot)
		return
	}
	a := v.([]string) // [JSON answer, event stream]
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, a[1])
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, a[0])
}

// FuzzLedgerEqualsTheBill: an OpenAI-compatible upstream answers a call of
// the real go-openai client (through NewHTTPClient, a team budget in a
// memory store) with a usage object of random counts — prompt, completion,
// cached, audio in and out, reasoning, accepted and rejected prediction
// tokens, a service tier — each count written as an integer, a string or
// an integral float, streamed or not, several calls a run. (go-openai
// itself fails to decode a count that is not a JSON integer: the call is
// its error, and the provider's bill is charged all the same.) The Meter's cost
// of each call is the upstream's bill priced by the catalog with big.Rat
// arithmetic, to the pico-dollar, and the team ledger's spend is the sum of
// the bills rounded up once to a micro-dollar, nothing held. A hostile
// count of 2^62 tokens is an error or a charge capped at 2^50
// micro-dollars, never a negative or wrapped amount.
func FuzzLedgerEqualsTheBill(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{2, 1, 200, 100, 50, 9, 3, 1, 2, 4, 1, 0, 0, 255, 255, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{5, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{3, 2, 255, 255, 255, 255, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	srv := &billServer{}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	base := &http.Transport{}
	f.Cleanup(base.CloseIdleConnections)
	pol := &policies.Policy{Version: 1, Name: "bill", Budget: policies.Budget{
		Team: policies.TeamBudget{Period: policies.PeriodMonthly, MaxUSD: 1 << 52},
	}}
	quiet := slog.New(slog.DiscardHandler)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
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
		hostile := false
		calls := int(next()%3) + 1
		for i := range calls {
			a := wiregen.NextBilledAnswer(next, maxOut)
			model, tier, stream, huge, usage := a.Model, a.Tier, a.Stream, a.Huge, a.Usage
			spec, _ := pol.Model(model)
			hostile = hostile || huge
			user := fmt.Sprintf("%s-%d", team, i)
			srv.answers.Store(user, []string{a.Plain, a.Events})

			req := goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxOut, User: user,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}
			err := wiregen.GoOpenAIChat(ctx, client, req, stream)
			srv.answers.Delete(user)
			if huge {
				// An error or a capped charge, checked on the ledger below; it
				// exhausts the budget (saturated at $9.2 million): the last call.
				break
			}
			var syntax *json.UnmarshalTypeError
			if err != nil && !(errors.As(err, &syntax) && !a.PlainInts) {
				t.Fatalf("call %d (%s, tier %q, stream %v, usage %s): %v", i, model, tier, stream, usage, err)
			}
			bill := a.Bill(spec)
			want = append(want, bill)
			wantSum.Add(wantSum, bill)
		}

		ledger.check(t, pol, team, want, wantSum, hostile, "the bill is")
	})
}
