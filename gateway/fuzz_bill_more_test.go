package gateway_test

import (
	"context"
	"math/big"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/policies"
)

// FuzzGatewayResponsesSpendEqualsTheBill: the official openai-go client
// calls the gateway's /v1/responses (over HTTP, or in process through
// Server.Transport), whose upstream answers each call, streamed or not,
// with a response object whose usage (input_tokens,
// input_tokens_details.cached_tokens, output_tokens,
// output_tokens_details.reasoning_tokens, total_tokens or not) has random
// counts written as integers, strings or integral floats, naming a random
// service tier. After one to three calls the team's spend (GET /v1/spend)
// is the sum of the upstream's bills priced by the catalog with big.Rat
// arithmetic, rounded up once to a micro-dollar, nothing held; a count of
// 2^62 tokens is an error or a capped charge. (openai-go may fail to decode
// a count that is not a JSON integer: such a call is its error, and the
// upstream's bill is charged all the same.)
func FuzzGatewayResponsesSpendEqualsTheBill(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{2, 1, 200, 100, 50, 9, 3, 1, 2, 4, 1, 0, 0, 255, 255, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{5, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{1, 2, 242, 255, 255, 255, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	f.Add([]byte{128, 1, 3, 1, 0, 16, 0, 0, 1, 0, 0, 1, 0, 5, 5, 5, 5, 5})
	up, g := startBillGateway(f)
	pol := policies.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
		g.restart(t) // a fresh ledger
		inProcess := next()&0x80 != 0
		client := billClient(g, inProcess)
		ctx := context.Background()

		const maxOut = 4096
		wantSum := new(big.Rat)
		hostile := false
		calls := int(next()%3) + 1
		for i := range calls {
			a := wiregen.NextBilledResponse(next, maxOut)
			spec, _ := pol.Model(a.Model)
			hostile = hostile || a.Huge
			ans := upstreamAnswer{status: http.StatusOK, contentType: "application/json", body: []byte(a.Plain)}
			if a.Stream {
				ans.contentType, ans.body = "text/event-stream", []byte(a.Events)
			}
			up.set(ans)

			params := responses.ResponseNewParams{Model: a.Model, MaxOutputTokens: openai.Int(maxOut),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Check the disks.")}}
			var err error
			completed := 0
			if a.Stream {
				s := client.Responses.NewStreaming(ctx, params)
				for s.Next() {
					if s.Current().Type == "response.completed" {
						completed++
					}
				}
				err = s.Err()
				_ = s.Close()
				if err == nil && completed != 1 {
					t.Fatalf("call %d: a stream with %d response.completed events and no error", i, completed)
				}
			} else {
				_, err = client.Responses.New(ctx, params)
			}
			g.checkNoPanic(t)
			if a.Huge {
				break // an error or a capped charge: it exhausts the budget
			}
			if err != nil && a.PlainInts {
				t.Fatalf("call %d (%s, tier %q, stream %v, in process %v, usage %s): %v\ngateway log:\n%s",
					i, a.Model, a.Tier, a.Stream, inProcess, a.Usage, err, g.logs.String())
			}
			wantSum.Add(wantSum, a.Bill(spec))
		}
		checkBillSpend(t, g, wantSum, hostile)
	})
}

// FuzzGatewayEmbeddingsSpendEqualsTheBill: openai-go's embeddings calls
// through the gateway (over HTTP or in process), whose upstream answers
// each with a usage of up to a million prompt tokens (total_tokens the
// same or left out) written as integers, strings or integral floats, of
// an embeddings model the catalog prices. After one to three calls the
// team's spend is the sum of the bills (input tokens at the model's input
// rate, big.Rat) rounded up once to a micro-dollar, nothing held; a count
// of 2^62 tokens is an error or a capped charge.
func FuzzGatewayEmbeddingsSpendEqualsTheBill(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{129, 2, 1, 2, 15, 255, 255, 1, 2, 2, 0, 0, 9, 9, 4, 4})
	f.Add([]byte{1, 1, 0, 240, 0, 0, 1, 0})
	up, g := startBillGateway(f)
	pol := policies.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
		g.restart(t)
		inProcess := next()&0x80 != 0
		client := billClient(g, inProcess)
		wantSum := new(big.Rat)
		hostile := false
		calls := int(next()%3) + 1
		for i := range calls {
			a := wiregen.NextBilledEmbeddings(next)
			spec, ok := pol.Model(a.Model)
			if !ok || !spec.HasPrice() {
				t.Fatalf("the catalog does not price %s", a.Model)
			}
			hostile = hostile || a.Huge
			up.set(upstreamAnswer{status: http.StatusOK, contentType: "application/json", body: []byte(a.Plain)})
			_, err := client.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: a.Model,
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("Check the disks.")}})
			g.checkNoPanic(t)
			if a.Huge {
				break
			}
			if err != nil && a.PlainInts {
				t.Fatalf("call %d (%s, in process %v, usage %s): %v\ngateway log:\n%s", i, a.Model, inProcess, a.Usage, err, g.logs.String())
			}
			wantSum.Add(wantSum, a.Bill(spec))
		}
		checkBillSpend(t, g, wantSum, hostile)
	})
}
