package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/policies"
)

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
	up, g := startBillGateway(f)
	pol := policies.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
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
			a := wiregen.NextBilledAnswer(next, maxOut)
			model, tier, stream, huge, usage := a.Model, a.Tier, a.Stream, a.Huge, a.Usage
			spec, _ := pol.Model(model)
			hostile = hostile || huge
			ans := upstreamAnswer{status: http.StatusOK, contentType: "application/json", body: []byte(a.Plain)}
			if stream {
				ans.contentType, ans.body = "text/event-stream", []byte(a.Events)
			}
			up.set(ans)

			req := goopenai.ChatCompletionRequest{Model: model, MaxCompletionTokens: maxOut,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "Check the disks."}}}
			err := wiregen.GoOpenAIChat(ctx, client, req, stream)
			g.checkNoPanic(t)
			if huge {
				// An error or a capped charge, checked on the ledger below; it
				// exhausts the budget (saturated at $9.2 million): the last call.
				break
			}
			var syntax *json.UnmarshalTypeError
			if err != nil && !(errors.As(err, &syntax) && !a.PlainInts) {
				t.Fatalf("call %d (%s, tier %q, stream %v, usage %s): %v\ngateway log:\n%s", i, model, tier, stream, usage, err, g.logs.String())
			}
			wantSum.Add(wantSum, a.Bill(spec))
		}
		checkBillSpend(t, g, wantSum, hostile)
	})
}
