package wiregen

import (
	"math/big"
	"strconv"

	"github.com/tokenwise/tokenwise/policies"
)

// BillModels are the models a billed answer (NextBilledAnswer) names:
// plain, with service tiers, with long-context rates, with audio rates.
var BillModels = []string{"gpt-4o-mini", "gpt-4o", "gpt-5", "gpt-5.4", "o3", "gpt-4o-audio-preview", "gpt-4.1"}

// BillTiers are the service tiers a billed answer names ("" names none).
var BillTiers = []string{"", "default", "priority", "flex", "auto"}

// BilledAnswer is an OpenAI-compatible chat answer with a usage object of
// random counts — prompt, completion, cached, audio in and out, reasoning,
// accepted and rejected prediction tokens — each written as an integer, a
// string or an integral float, naming a random service tier: what the
// fuzz targets that hold a ledger to the upstream's bill play
// (FuzzLedgerEqualsTheBill, FuzzGatewaySpendEqualsTheBill,
// FuzzLangchaingoLedgerEqualsTheBill, FuzzOpenAIGoLedgerEqualsTheBill,
// FuzzRetriedCallChargesEveryBilledAttempt).
type BilledAnswer struct {
	Model, Tier string
	Stream      bool // the call streams (its answer: Events)
	// Huge: the prompt counts 2^62 tokens, a hostile count (an error or
	// a capped charge).
	Huge bool
	// PlainInts: every count is a JSON integer, the only counts
	// go-openai itself reads.
	PlainInts bool
	Usage     string // the usage object
	Plain     string // the answer as one JSON object
	Events    string // the answer as an event stream, usage in its last chunk

	in, out, cached, audioIn, audioOut int64
}

// NextBilledAnswer draws a BilledAnswer from next's bytes (0 once they
// run out), its completion at most maxOut tokens.
func NextBilledAnswer(next func() byte, maxOut int64) BilledAnswer {
	num := func(bits uint) int64 { return nextNum(next, bits) }
	a, withTotal := nextChatHead(next)
	// Up to a million (both sides of gpt-5.4's long context); never none:
	// an all-zero usage is read as none, billed the estimate.
	a.in = num(20) + 1
	a.out = num(12) % (maxOut + 1)
	a.cached = num(20) % (a.in + 1)
	a.audioIn = num(12) % (a.in - a.cached + 1)
	reasoning := num(12) % (a.out + 1)
	a.audioOut = num(12) % (a.out + 1)
	accepted := num(12) % (a.out + 1)
	rejected := num(12) % (a.out - accepted + 1)
	if a.Huge {
		a.in = 1 << 62
	}
	a.PlainInts = true
	count := func(n int64) string { return a.nextCount(next, n) }
	usage := `{"prompt_tokens":` + count(a.in) + `,"completion_tokens":` + count(a.out)
	if withTotal && !a.Huge {
		usage += `,"total_tokens":` + count(a.in+a.out)
	}
	usage += `,"prompt_tokens_details":{"cached_tokens":` + count(a.cached) + `,"audio_tokens":` + count(a.audioIn) + `}` +
		`,"completion_tokens_details":{"reasoning_tokens":` + count(reasoning) + `,"audio_tokens":` + count(a.audioOut) +
		`,"accepted_prediction_tokens":` + count(accepted) + `,"rejected_prediction_tokens":` + count(rejected) + `}}`
	a.Usage = usage
	tierJSON := ""
	if a.Tier != "" {
		tierJSON = `,"service_tier":` + strconv.Quote(a.Tier)
	}
	head := `{"id":"c1","object":"chat.completion","created":1,"model":"` + a.Model + `"` + tierJSON
	a.Plain = head + `,"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],"usage":` + usage + `}`
	chunk := func(delta, finish string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + a.Model + `"` + tierJSON +
			`,"choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}` + "\n\n"
	}
	a.Events = chunk(`{"role":"assistant","content":"do"}`, "null") + chunk(`{"content":"ne"}`, `"stop"`) +
		`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + a.Model + `"` + tierJSON + `,"choices":[],"usage":` + usage + "}\n\ndata: [DONE]\n\n"
	return a
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

// Bill returns what the provider bills the answer (not a Huge one), in
// pico-dollars, exact: spec's per-million prices (micro-dollars a million
// tokens: pico-dollars a token) of the tier the answer names ("auto": the
// default's), cached and audio tokens at their own rates where spec has
// them.
func (a BilledAnswer) Bill(spec policies.ModelSpec) *big.Rat {
	tier := a.Tier
	if tier == "auto" {
		tier = ""
	}
	r := spec.Rates(tier, a.in)
	or := func(x, y policies.USD) policies.USD {
		if x == 0 {
			return y
		}
		return x
	}
	bill := new(big.Rat)
	add := func(n int64, rate policies.USD) {
		bill.Add(bill, new(big.Rat).Mul(big.NewRat(n, 1), big.NewRat(rate.Micro(), 1)))
	}
	add(a.in-a.cached-a.audioIn, r.InputPer1M)
	add(a.cached, or(r.CachedInputPer1M, r.InputPer1M))
	add(a.audioIn, or(spec.AudioInputPer1M, r.InputPer1M))
	add(a.out-a.audioOut, r.OutputPer1M)
	add(a.audioOut, or(spec.AudioOutputPer1M, r.OutputPer1M))
	return bill
}

// MicroUp returns pico pico-dollars in micro-dollars rounded up once, as a
// ledger reads the exact sum of its charges.
func MicroUp(pico *big.Rat) int64 {
	micro := new(big.Rat).Quo(pico, big.NewRat(1_000_000, 1))
	up := new(big.Int).Quo(micro.Num(), micro.Denom())
	if !micro.IsInt() {
		up.Add(up, big.NewInt(1))
	}
	return up.Int64()
}

// NextBilledResponse draws an answer to a Responses API call (the
// Responses usage shape: input_tokens, input_tokens_details.cached_tokens,
// output_tokens, output_tokens_details.reasoning_tokens, total_tokens;
// no audio) from next's bytes the way NextBilledAnswer draws a chat
// answer: Plain is the response object, Events its event stream
// (response.created, a text delta, response.completed with the object).
// Bill prices it.
func NextBilledResponse(next func() byte, maxOut int64) BilledAnswer {
	num := func(bits uint) int64 { return nextNum(next, bits) }
	a, withTotal := nextChatHead(next)
	a.in = num(20) + 1
	a.out = num(12) % (maxOut + 1)
	a.cached = num(20) % (a.in + 1)
	reasoning := num(12) % (a.out + 1)
	if a.Huge {
		a.in = 1 << 62
	}
	a.PlainInts = true
	count := func(n int64) string { return a.nextCount(next, n) }
	usage := `{"input_tokens":` + count(a.in) + `,"input_tokens_details":{"cached_tokens":` + count(a.cached) + `}` +
		`,"output_tokens":` + count(a.out) + `,"output_tokens_details":{"reasoning_tokens":` + count(reasoning) + `}`
	if withTotal && !a.Huge {
		usage += `,"total_tokens":` + count(a.in+a.out)
	}
	a.Usage = usage + `}`
	tierJSON := ""
	if a.Tier != "" {
		tierJSON = `,"service_tier":` + strconv.Quote(a.Tier)
	}
	head := `{"id":"resp_1","object":"response","created_at":1,"model":"` + a.Model + `"` + tierJSON
	message := `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"done","annotations":[]}]}`
	a.Plain = head + `,"status":"completed","output":[` + message + `],"usage":` + a.Usage + `}`
	a.Events = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + head + `,"status":"in_progress","output":[]}}` + "\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"done\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":" + a.Plain + "}\n\n"
	return a
}

// BillEmbeddingModels are the embeddings models the catalog prices, which
// a billed embeddings answer (NextBilledEmbeddings) names.
var BillEmbeddingModels = []string{"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}

// NextBilledEmbeddings draws an embeddings answer from next's bytes: a
// model of BillEmbeddingModels, one vector, a usage of up to a million
// prompt tokens (total_tokens the same, or left out) written as
// NextBilledAnswer writes counts. Plain is the answer; Bill prices it (its
// input tokens at the model's input rate).
func NextBilledEmbeddings(next func() byte) BilledAnswer {
	a := BilledAnswer{Model: BillEmbeddingModels[int(next())%len(BillEmbeddingModels)]}
	modes := next()
	withTotal := modes&2 == 2
	a.Huge = modes&0xF0 == 0xF0
	a.in = (int64(next())<<16|int64(next())<<8|int64(next()))&(1<<20-1) + 1
	if a.Huge {
		a.in = 1 << 62
	}
	a.PlainInts = true
	count := func(n int64) string { return a.nextCount(next, n) }
	a.Usage = `{"prompt_tokens":` + count(a.in)
	if withTotal {
		a.Usage += `,"total_tokens":` + count(a.in)
	}
	a.Usage += `}`
	a.Plain = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"` + a.Model + `","usage":` + a.Usage + `}`
	return a
}

// nextNum draws a count below 2^bits from next's bytes, big-endian.
func nextNum(next func() byte, bits uint) int64 {
	var n int64
	for range (bits + 7) / 8 {
		n = n<<8 | int64(next())
	}
	return n & (1<<bits - 1)
}

// nextChatHead draws what NextBilledAnswer and NextBilledResponse draw
// first: the model, the tier, and the modes byte (streamed, with a
// total, hostile).
func nextChatHead(next func() byte) (a BilledAnswer, withTotal bool) {
	a = BilledAnswer{Model: BillModels[int(next())%len(BillModels)], Tier: BillTiers[int(next())%len(BillTiers)]}
	modes := next()
	a.Stream = modes&1 == 1
	a.Huge = modes&0xF0 == 0xF0
	return a, modes&2 == 2
}

// nextCount writes n as the next byte picks (wireCount), clearing
// PlainInts when that is not a JSON integer.
func (a *BilledAnswer) nextCount(next func() byte, n int64) string {
	m := next()
	if m%5 != 0 {
		a.PlainInts = false
	}
	return wireCount(n, m)
}
