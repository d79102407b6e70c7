package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/policies"
)

// gwBillModels are the models FuzzGatewaySpendEqualsTheBill calls: plain,
// with service tiers, with long-context rates, with audio rates.
var gwBillModels = []string{"gpt-4o-mini", "gpt-4o", "gpt-5", "gpt-5.4", "o3", "gpt-4o-audio-preview", "gpt-4.1"}

// gwBillTiers are the service tiers an answer names ("" names none).
var gwBillTiers = []string{"", "default", "priority", "flex", "auto"}

// gwCount writes n as a usage count the way mode picks: a JSON integer,
// a string, an integral float, an exponent, a string of a float.
func gwCount(n int64, mode uint8) string {
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

// FuzzGatewaySpendEqualsTheBill: the real go-openai client calls the
// gateway (a team budget in its memory store), whose upstream answers
// each call, streamed or not, with a usage object of random counts —
// prompt, completion, cached, audio in and out, reasoning, accepted and
// rejected prediction tokens — written as integers, strings or integral
// floats, naming a random service tier. After one to three calls the
// team's spend (GET /v1/spend) is the sum of the upstream's bills priced
// by the catalog with big.Rat arithmetic, rounded up once to a
// micro-dollar, nothing held. A count of 2^62 tokens is an error or a
// charge capped at 2^50 micro-dollars, never a negative or wrapped spend.
// (go-openai fails to decode a count that is not a JSON integer: such a
// call is its error, and the upstream's bill is charged all the same.)
func FuzzGatewaySpendEqualsTheBill(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{2, 1, 200, 100, 50, 9, 3, 1, 2, 4, 1, 0, 0, 255, 255, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{5, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{1, 2, 242, 255, 255, 255, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	f.Setenv(upstreamEnv, upstreamKey)
	up := &rawUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Cleanup(ts.Close)
	g := startFuzzGateway(f, ts.URL+"/v1", fuzzUpstreamPolicies, "")
	pol := policies.Default()
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
		g.restart(t) // a fresh ledger
		cfg := goopenai.DefaultConfig(devopsKey)
		cfg.BaseURL = g.url + "/v1"
		cfg.HTTPClient = g.client
		client := goopenai.NewClientWithConfig(cfg)
		ctx := context.Background()

		const maxOut = 4096
		wantSum := new(big.Rat)
		hostile := false
		calls := int(next()%3) + 1
		for i := range calls {
			model := gwBillModels[int(next())%len(gwBillModels)]
			spec, _ := pol.Model(model)
			tier := gwBillTiers[int(next())%len(gwBillTiers)]
			modes := next()
			stream := modes&1 == 1
			withTotal := modes&2 == 2
			huge := modes&0xF0 == 0xF0
			in := num(20) + 1 // never none: an all-zero usage is read as none, billed the estimate
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
			plainInts := true
			cm := func() uint8 {
				m := next()
				if m%5 != 0 {
					plainInts = false
				}
				return m
			}
			usage := `{"prompt_tokens":` + gwCount(in, cm()) + `,"completion_tokens":` + gwCount(out, cm())
			if withTotal && !huge {
				usage += `,"total_tokens":` + gwCount(in+out, cm())
			}
			usage += `,"prompt_tokens_details":{"cached_tokens":` + gwCount(cached, cm()) + `,"audio_tokens":` + gwCount(audioIn, cm()) + `}` +
				`,"completion_tokens_details":{"reasoning_tokens":` + gwCount(reasoning, cm()) + `,"audio_tokens":` + gwCount(audioOut, cm()) +
				`,"accepted_prediction_tokens":` + gwCount(accepted, cm()) + `,"rejected_prediction_tokens":` + gwCount(rejected, cm()) + `}}`
			tierJSON := ""
			if tier != "" {
				tierJSON = `,"service_tier":` + strconv.Quote(tier)
			}
			ans := upstreamAnswer{status: http.StatusOK, contentType: "application/json",
				body: []byte(`{"id":"c1","object":"chat.completion","created":1,"model":"` + model + `"` + tierJSON +
					`,"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":` + usage + `}`)}
			if stream {
				chunk := func(delta, finish string) string {
					return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model + `"` + tierJSON +
						`,"choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}` + "\n\n"
				}
				ans.contentType = "text/event-stream"
				ans.body = []byte(chunk(`{"role":"assistant","content":"do"}`, "null") + chunk(`{"content":"ne"}`, `"stop"`) +
					`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model + `"` + tierJSON + `,"choices":[],"usage":` + usage + "}\n\ndata: [DONE]\n\n")
			}
			up.set(ans)

			req := goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxOut,
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
			g.checkNoPanic(t)
			if huge {
				// An error or a capped charge, checked on the ledger below; it
				// exhausts the budget (saturated at $9.2 million): the last call.
				break
			}
			var syntax *json.UnmarshalTypeError
			if err != nil && !(errors.As(err, &syntax) && !plainInts) {
				t.Fatalf("call %d (%s, tier %q, stream %v, usage %s): %v\ngateway log:\n%s", i, model, tier, stream, usage, err, g.logs.String())
			}
			// The bill: the catalog's per-million prices (micro-dollars per
			// million tokens: pico-dollars per token) of the tier the
			// answer names.
			billedTier := tier
			if billedTier == "auto" {
				billedTier = ""
			}
			r := spec.Rates(billedTier, in)
			or := func(a, b policies.USD) policies.USD {
				if a == 0 {
					return b
				}
				return a
			}
			add := func(n int64, rate policies.USD) {
				wantSum.Add(wantSum, new(big.Rat).Mul(big.NewRat(n, 1), big.NewRat(rate.Micro(), 1)))
			}
			add(in-cached-audioIn, r.InputPer1M)
			add(cached, or(r.CachedInputPer1M, r.InputPer1M))
			add(audioIn, or(spec.AudioInputPer1M, r.InputPer1M))
			add(out-audioOut, r.OutputPer1M)
			add(audioOut, or(spec.AudioOutputPer1M, r.OutputPer1M))
		}
		sp := g.spend(t, devopsKey) // whole: nothing negative, held or in flight
		if hostile {
			if sp.spent > 3<<50 {
				t.Fatalf("after a usage of 2^62 tokens the team spent %d micro-dollars", sp.spent)
			}
			return
		}
		micro := new(big.Rat).Quo(wantSum, big.NewRat(1_000_000, 1))
		upTo := new(big.Int).Quo(micro.Num(), micro.Denom())
		if !micro.IsInt() {
			upTo.Add(upTo, big.NewInt(1))
		}
		if sp.spent != upTo.Int64() {
			t.Fatalf("the team spent %d micro-dollars, the upstream's bills sum to %s pico-dollars (%s micro-dollars rounded up)",
				sp.spent, wantSum.FloatString(0), upTo)
		}
	})
}
