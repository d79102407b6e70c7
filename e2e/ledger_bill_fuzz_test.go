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
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// billModels are the models FuzzLedgerEqualsTheBill calls: plain, with
// service tiers, with long-context rates, with audio rates.
var billModels = []string{"gpt-4o-mini", "gpt-4o", "gpt-5", "gpt-5.4", "o3", "gpt-4o-audio-preview", "gpt-4.1"}

// billTiers are the service tiers an answer names ("" names none).
var billTiers = []string{"", "default", "priority", "flex", "auto"}

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

// wireCount writes n as a usage count the way mode picks: a JSON integer,
// a string, an integral float, an exponent, a string of a float.
func wireCount(n int64, mode uint8) string {
	switch mode % 5 {
	case 1:
		return strconv.Quote(strconv.FormatInt(n, 10))
	case 2:
		return strconv.FormatInt(n, 10) + ".0"
	case 3:
		return strconv.FormatInt(n, 10) + "e0"
	case 4:
		return strconv.Quote(strconv.FormatInt(n, 10) + ".0")
	}
	return strconv.FormatInt(n, 10)
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
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		num := func(bits uint) int64 { // a count below 2^bits
			var n int64
			for range (bits + 7) / 8 {
				n = n<<8 | int64(next())
			}
			return n & (1<<bits - 1)
		}
		store := budget.NewMemoryStore()
		var costs []int64
		var mu sync.Mutex
		obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
			if fin, ok := e.(middleware.CallFinished); ok {
				mu.Lock()
				costs = append(costs, fin.Facts.CostPico)
				mu.Unlock()
			}
		})
		chain := llmwrap.MustBuild(pol, llmwrap.WithBudgetStore(store), llmwrap.WithObserver(obs), llmwrap.WithLogger(quiet))
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
			model := billModels[int(next())%len(billModels)]
			spec, _ := pol.Model(model)
			tier := billTiers[int(next())%len(billTiers)]
			modes := next()
			stream := modes&1 == 1
			withTotal := modes&2 == 2
			huge := modes&0xF0 == 0xF0
			in := num(20) + 1 // up to a million (both sides of gpt-5.4's long context); never none: an all-zero usage is read as none, billed the estimate
			out := num(12) % (maxOut + 1)
			cached := num(20) % (in + 1)
			audioIn := num(12) % (in - cached + 1)
			reasoning := num(12) % (out + 1)
			audioOut := num(12) % (out + 1)
			accepted := num(12) % (out + 1)
			rejected := num(12) % (out - accepted + 1)
			if huge {
				in = 1 << 62
				hostile = true
			}
			plainInts := true // go-openai reads only integer counts
			cm := func() uint8 {
				m := next()
				if m%5 != 0 {
					plainInts = false
				}
				return m
			}
			usage := `{"prompt_tokens":` + wireCount(in, cm()) + `,"completion_tokens":` + wireCount(out, cm())
			if withTotal && !huge {
				usage += `,"total_tokens":` + wireCount(in+out, cm())
			}
			usage += `,"prompt_tokens_details":{"cached_tokens":` + wireCount(cached, cm()) + `,"audio_tokens":` + wireCount(audioIn, cm()) + `}` +
				`,"completion_tokens_details":{"reasoning_tokens":` + wireCount(reasoning, cm()) + `,"audio_tokens":` + wireCount(audioOut, cm()) +
				`,"accepted_prediction_tokens":` + wireCount(accepted, cm()) + `,"rejected_prediction_tokens":` + wireCount(rejected, cm()) + `}}`
			tierJSON := ""
			if tier != "" {
				tierJSON = `,"service_tier":` + strconv.Quote(tier)
			}
			plain := `{"id":"c1","object":"chat.completion","created":1,"model":"` + model + `"` + tierJSON +
				`,"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":` + usage + `}`
			chunk := func(delta, finish, extra string) string {
				return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model + `"` + tierJSON +
					`,"choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]` + extra + "}\n\n"
			}
			events := chunk(`{"role":"assistant","content":"do"}`, "null", "") + chunk(`{"content":"ne"}`, `"stop"`, "") +
				`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model + `"` + tierJSON + `,"choices":[],"usage":` + usage + "}\n\ndata: [DONE]\n\n"
			user := fmt.Sprintf("%s-%d", team, i)
			srv.answers.Store(user, []string{plain, events})

			req := goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxOut, User: user,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}
			var err error
			if stream {
				req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
				var s *goopenai.ChatCompletionStream
				if s, err = client.CreateChatCompletionStream(ctx, req); err == nil {
					for err == nil {
						_, err = s.Recv()
					}
					s.Close()
					if errors.Is(err, io.EOF) {
						err = nil
					}
				}
			} else {
				_, err = client.CreateChatCompletion(ctx, req)
			}
			srv.answers.Delete(user)
			if huge {
				// An error or a capped charge, checked on the ledger below; it
				// exhausts the budget (saturated at $9.2 million): the last call.
				break
			}
			var syntax *json.UnmarshalTypeError
			if err != nil && !(errors.As(err, &syntax) && !plainInts) {
				t.Fatalf("call %d (%s, tier %q, stream %v, usage %s): %v", i, model, tier, stream, usage, err)
			}
			// The bill: the catalog's per-million prices of the tier the
			// answer names (the request names none), per token.
			billedTier := tier
			if billedTier == "auto" {
				billedTier = ""
			}
			r := spec.Rates(billedTier, in)
			per := func(usd policies.USD) *big.Rat { return big.NewRat(usd.Micro(), 1) } // pico-dollars a token
			or := func(a, b policies.USD) policies.USD {
				if a == 0 {
					return b
				}
				return a
			}
			bill := new(big.Rat)
			add := func(n int64, rate policies.USD) { bill.Add(bill, new(big.Rat).Mul(big.NewRat(n, 1), per(rate))) }
			add(in-cached-audioIn, r.InputPer1M)
			add(cached, or(r.CachedInputPer1M, r.InputPer1M))
			add(audioIn, or(spec.AudioInputPer1M, r.InputPer1M))
			add(out-audioOut, r.OutputPer1M)
			add(audioOut, or(spec.AudioOutputPer1M, r.OutputPer1M))
			want = append(want, bill)
			wantSum.Add(wantSum, bill)
		}

		b, err := llmwrap.NewBudget(pol, budget.WithStore(store))
		if err != nil {
			t.Fatal(err)
		}
		rem, err := b.Remaining(context.Background(), team)
		if err != nil {
			t.Fatal(err)
		}
		if !rem.Reserved.IsZero() {
			t.Fatalf("the ledger still holds %+v after the calls", rem.Reserved)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range costs {
			if c < 0 {
				t.Fatalf("a call cost %d pico-dollars", c)
			}
		}
		if hostile {
			if rem.Used.USDMicros < 0 || rem.Used.USDMicros > 3<<50 {
				t.Fatalf("after a usage of 2^62 tokens the ledger spent %d micro-dollars", rem.Used.USDMicros)
			}
			return
		}
		if len(costs) != len(want) {
			t.Fatalf("%d calls finished, want %d", len(costs), len(want))
		}
		for i, c := range costs {
			if big.NewRat(c, 1).Cmp(want[i]) != 0 {
				t.Fatalf("call %d cost %s, the bill is %s pico-dollars", i, policies.PicoUSD(c), want[i].FloatString(0))
			}
		}
		micro := new(big.Rat).Quo(wantSum, big.NewRat(1_000_000, 1))
		up := new(big.Int).Quo(micro.Num(), micro.Denom())
		if !micro.IsInt() {
			up.Add(up, big.NewInt(1))
		}
		if rem.Used.USDMicros != up.Int64() {
			t.Fatalf("the team ledger spent %d micro-dollars, the bills sum to %s pico-dollars (%s micro-dollars rounded up)",
				rem.Used.USDMicros, wantSum.FloatString(0), up)
		}
	})
}
