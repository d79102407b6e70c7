package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// isEmbeddings reports whether a pass-through request is an embeddings call.
func isEmbeddings(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/embeddings")
}

// passHold is a passed-through call's reservation in the ledgers of its
// team's budget — the team's and, when the call names a run (X-Run-Id),
// the run's — held before the call as a chat call's estimate is (an
// embeddings call's: the tokens of its input and their price when the
// policy's catalog prices the model; a Responses call's worst case), so
// that concurrent calls never spend past the budget between them, and
// settled at the answer's usage (released when there is no answer).
type passHold struct {
	s    *Server
	team string
	// pl is the team's policy the call was held under: its prices charge
	// the answer, whatever a reload put in force meanwhile (as a chat
	// call runs to its end under the chain it started with).
	pl       *passLimits
	model    string
	need     budget.Amount
	hold     *budget.CallHold
	ticket   ratelimit.Ticket // the rate limits' admission (the zero Ticket: none)
	doneOnce sync.Once
	// An embeddings call's start and its report's once (reportEmbeddings).
	callStart time.Time
	repOnce   sync.Once
	// An embeddings call of a team without a budget or rate limits is
	// held to be reported only (reportOnly): its input, counted only when
	// the answer has no usage to report (estimated).
	reportOnly bool
	input      json.RawMessage
	// named is the run the embeddings call names (X-Run-Id), whose record
	// gets the call; nil: none.
	named *middleware.Run
}

// reportEmbeddings reports an embeddings call once, in the record of the
// run it names and to the team's observers (Server.report): the model
// that answered ("": the one asked for), the tokens its input used (an
// estimate when estimated), what it cost (pico-USD), or why it failed.
func (h *passHold) reportEmbeddings(model string, tokens, pico int64, estimated bool, err error) {
	h.repOnce.Do(func() {
		u := middleware.Usage{InputTokens: tokens}
		lat := time.Since(h.callStart)
		model := cmp.Or(model, h.model)
		h.s.report(h.team, h.named, middleware.CallRecord{CallFacts: middleware.CallFacts{Team: h.team, Operation: "embeddings",
			RequestedModel: cmp.Or(h.model, model), Model: model, CostPico: pico,
			Attempts: []middleware.Attempt{{Model: model, Latency: lat, Usage: u, CostPico: pico, Err: err, Estimated: estimated}}},
			Usage: u, Latency: lat, Start: h.callStart, Err: err})
	})
}

// done settles the rate limits' admission once: used tokens (-1:
// unknown, the admission's estimate stands) in requests made upstream (0:
// none, the admission is refunded).
func (h *passHold) done(ctx context.Context, used int64, requests int) {
	h.doneOnce.Do(func() { h.ticket.Done(ctx, used, requests) })
}

// admit admits the call against the rate limits of its model with need
// tokens, in of them its input (what each request that failed is charged
// of them), nothing when the policy has no rate limits.
func (h *passHold) admit(ctx context.Context, l *ratelimit.Limiter, in, need int64) error {
	if l == nil {
		return nil
	}
	t, err := l.ReserveInput(ctx, h.model, h.team, in, need)
	if err != nil {
		h.settle(ctx, budget.Amount{})
		return err
	}
	h.ticket = t
	return nil
}

// embeddingsRequest is what the gateway reads of an embeddings request.
type embeddingsRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

// embeddingsInputTokens counts the tokens of an embeddings input as the
// model's encoding does: a string, an array of strings, an array of token
// ids, or an array of arrays of them. ok is false for any other shape
// (the upstream refuses it).
func (s *Server) embeddingsInputTokens(model string, input json.RawMessage) (n int64, ok bool) {
	var one string
	if json.Unmarshal(input, &one) == nil {
		return s.est.Text(model, one), true
	}
	var texts []string
	if json.Unmarshal(input, &texts) == nil {
		for _, t := range texts {
			n += s.est.Text(model, t)
		}
		return n, true
	}
	var ids []int64
	if json.Unmarshal(input, &ids) == nil {
		return int64(len(ids)), true
	}
	var batches [][]int64
	if json.Unmarshal(input, &batches) == nil {
		for _, b := range batches {
			n += int64(len(b))
		}
		return n, true
	}
	return 0, false
}

// reserveEmbeddings holds an embeddings call's worst case (the tokens of
// its input, priced when the catalog knows the model: an embeddings call
// has no output) in the ledgers of its team's budget (ctx names the team
// and the run), or refuses the call with an OpenAI-shaped 429 when that
// does not fit in what is left, or with a 400 when its input cannot be
// counted (req nil: not JSON; no model; an input of another shape). When
// the team's policy has no budget and no rate limits, the hold holds
// nothing and refuses nothing: it reports the call (reportOnly). The hold
// is nil only with an error.
func (s *Server) reserveEmbeddings(ctx context.Context, team string, req *embeddingsRequest) (*passHold, *apiError) {
	pl := s.passLimitsOf(team)
	if pl.err != nil {
		return nil, pl.err
	}
	if pl.budget == nil && pl.limiter == nil {
		// Nothing to hold: the call is only reported (its cost in the
		// metrics and its run's record), as the answer's usage says, and
		// its input is counted only when the answer has none. A body the
		// gateway cannot read is the upstream's to refuse.
		h := &passHold{s: s, team: team, pl: pl, callStart: time.Now(), reportOnly: true}
		if req != nil {
			h.model, h.input = req.Model, req.Input
		}
		return h, nil
	}
	h := &passHold{s: s, team: team, pl: pl, callStart: time.Now()}
	counted := false
	if req != nil {
		h.model = req.Model
		if n, ok := s.embeddingsInputTokens(req.Model, req.Input); ok {
			h.need.Tokens, counted = n, true
			h.need.USDMicros = pl.embeddingsCost(req.Model, n)
		}
	}
	if !counted || h.model == "" {
		// Nothing the budget and rate limits can hold at its worst case
		// (the upstream refuses such a body too).
		return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", NoRetry: true,
			Message: "tokenwise/gateway: an embeddings request the team's budget and rate limits cannot account for: it needs a JSON body with a model and an input of a string, strings or token arrays"}
	}
	if pl.budget != nil {
		// A USD budget cannot hold a model without a price: refused, as a
		// chat or Responses call is, rather than sent and charged $0.
		runLim, teamLim := pl.budget.Limits()
		if spec, known := pl.pol.Model(h.model); (runLim.USDMicros > 0 || teamLim.USDMicros > 0) && (!known || !spec.HasPrice()) {
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "model_not_priced", NoRetry: true,
				Message: "tokenwise/gateway: a USD budget applies and model " + strconv.Quote(h.model) + " has no price in the catalog or the team's policy"}
		}
		if err := h.reserve(ctx, pl.budget); err != nil {
			return nil, classify(err, s.secrets...)
		}
	}
	if pl.limiter != nil {
		if err := h.admit(ctx, pl.limiter, h.need.Tokens, h.need.Tokens); err != nil {
			return nil, classify(err, s.secrets...)
		}
	}
	return h, nil
}

// passLimits are the budget and the rate limiter of a team's policy for
// passed-through calls, built once per policy (a reload builds them
// anew): a budget's local share while its store is down (on_unavailable:
// local) is counted across calls, as a chain's is.
type passLimits struct {
	pol     *policies.Policy
	pricer  middleware.Pricer  // the policy's prices
	budget  *budget.Budget     // nil: the policy has no budget
	limiter *ratelimit.Limiter // nil: the policy has no rate limits
	rules   *route.Rules       // nil: the policy routes nothing
	cache   *responsesCache    // nil: the policy caches nothing
	// The chain of its Responses calls (responses_fallback.go), the one
	// that hedges (nil: the policy does not hedge), and the observer of
	// their events; nil when it could not be built.
	chain    middleware.Handler
	hedged   middleware.Handler
	observer middleware.Observer
	err      *apiError

	// answers memoizes pol.AnswerModels (a scan of the whole catalog) by
	// model name, for at most maxAnswerNames names (a request's model is
	// the caller's to name).
	answers  sync.Map // string -> []string
	answersN atomic.Int64
}

// maxAnswerNames bounds the model names a passLimits memoizes the answer
// models of.
const maxAnswerNames = 4096

// answerModels is pl.pol.AnswerModels(model), memoized.
func (pl *passLimits) answerModels(model string) []string {
	if v, ok := pl.answers.Load(model); ok {
		return v.([]string)
	}
	out := pl.pol.AnswerModels(model)
	if pl.answersN.Add(1) <= maxAnswerNames {
		pl.answers.Store(strings.Clone(model), out)
	}
	return out
}

// passLimitsOf returns team's passLimits under its current policy.
func (s *Server) passLimitsOf(team string) *passLimits {
	pol := s.pol.Policy(team)
	s.passMu.Lock()
	defer s.passMu.Unlock()
	if pl := s.passBy[team]; pl != nil && pl.pol == pol {
		return pl
	}
	pl := &passLimits{pol: pol, pricer: llmwrap.Pricer(pol)}
	if b, err := llmwrap.NewBudget(pol, budget.WithStore(s.budgets), budget.WithLocalStore(s.budgetLocal), budget.WithLogger(s.logger)); err != nil {
		pl.err = classify(err, s.secrets...)
	} else if b.Active() {
		pl.budget = b
	}
	if pol.RateLimits.Enabled() {
		if l, err := llmwrap.NewRateLimiter(pol, ratelimit.WithStore(s.rates), ratelimit.WithLocalStore(s.rateLocal), ratelimit.WithLogger(s.logger)); err != nil {
			pl.err = classify(err, s.secrets...)
		} else {
			pl.limiter = l
		}
	}
	pl.rules = s.newPassRules(pl)
	pl.cache = s.newResponsesCache(team, pol)
	s.newResponsesChain(pl)
	if s.passBy == nil {
		s.passBy = map[string]*passLimits{}
	}
	s.passBy[team] = pl
	return pl
}

// reserve holds h.need in the ledgers of b that apply to ctx's call.
func (h *passHold) reserve(ctx context.Context, b *budget.Budget) error {
	var err error
	if h.hold, err = b.Reserve(ctx, h.need); err != nil {
		if ee, ok := errors.AsType[*budget.ExceededError](err); ok {
			ee.Model = h.model
		}
		return err
	}
	return nil
}

// embeddingsCost is the price in micro-dollars (rounded up) of n input
// tokens of model under the policy's catalog, at the dearest model the
// answer may be billed as (model, or a snapshot of it at a price of its
// own: policies.Policy.AnswerModels); 0 when the catalog has no price.
// It is what a call is reserved, and charged when its usage is not read.
func (pl *passLimits) embeddingsCost(model string, n int64) int64 {
	pico, _ := pl.embeddingsPico(model, n)
	for _, m := range pl.answerModels(model) {
		p, _ := pl.embeddingsPico(m, n)
		pico = max(pico, p)
	}
	return ceilMicro(pico)
}

// embeddingsPico is the exact price in pico-dollars of n input tokens of
// model under the policy's catalog, and whether the catalog prices the
// model (0 and false when it does not).
func (pl *passLimits) embeddingsPico(model string, n int64) (int64, bool) {
	if spec, ok := pl.pol.Model(model); ok && spec.HasPrice() {
		return int64(spec.Cost(policies.TokenCounts{Input: n})), true
	}
	return 0, false
}

// settle settles h at actual once (the budget logs a ledger it cannot
// write); later calls do nothing.
func (h *passHold) settle(ctx context.Context, actual budget.Amount) {
	if h.hold != nil {
		h.hold.Settle(ctx, actual)
	}
}

// chargeEmbeddings settles the reservation of a successful embeddings
// answer at its usage — its tokens and, when the policy's catalog prices
// the model, their cost (in the ledger /v1/spend and the chat calls'
// budget read, shared by the replicas) — and reports the call. The
// answer is not held back: it is passed on as it comes, its first and
// last bytes kept to read its model and usage from when it ends
// (scannedBody), so that a large batch's vectors never sit in the
// gateway's memory (one the gateway has read whole already, as it does
// an answer up to 64 KiB, is charged before it is passed on). An answer
// that is not a success releases the
// reservation; a success without readable usage, or cut, is charged what
// was reserved (the provider billed it).
func (h *passHold) chargeEmbeddings(resp *http.Response) error {
	ctx := resp.Request.Context()
	if h.unsuccessful(ctx, resp) {
		h.reportEmbeddings("", 0, 0, false, errNoEmbeddings) // before the error answer is passed on
		return nil
	}
	if a, ok := resp.Body.(*answerBody); ok && a.Len() == len(a.data) {
		// Read whole already (peekEmbeddedError reads the first 64 KiB of
		// an answer): charged before its headers are passed on.
		u, _ := parseEmbeddingsAnswer(a.data)
		h.finishEmbeddings(ctx, u, nil)
		return nil
	}
	resp.Body = &scannedBody{ReadCloser: resp.Body, length: resp.ContentLength, end: func(a *embeddingsAnswer, err error) {
		h.finishEmbeddings(ctx, a, err)
	}}
	return nil
}

// finishEmbeddings settles and reports an embeddings call that got a
// successful answer: at a's usage, or (a nil: an answer cut by err, or
// without readable usage) at its estimate.
func (h *passHold) finishEmbeddings(ctx context.Context, a *embeddingsAnswer, err error) {
	if a == nil {
		if err == nil {
			h.s.logger.Warn("tokenwise/gateway: an embeddings answer without readable usage: charged its estimate", "team", h.team)
		}
		h.estimate()
		h.settle(ctx, h.need)
		h.done(ctx, -1, 1)
		h.reportEmbeddings("", h.need.Tokens, middleware.SatMul(h.need.USDMicros, 1_000_000), true, err)
		return
	}
	tok := budget.Settleable(budget.Amount{Tokens: a.tokens()}).Tokens
	model := cmp.Or(a.Model, h.model)
	// At the price of the model that answered, by the chat calls' rule
	// (middleware.BilledModel).
	billed := middleware.BilledModel(h.pl.pricer, h.model, a.Model)
	pico, priced := h.pl.embeddingsPico(billed, tok) // (one lookup of the model's price)
	if !priced && tok > 0 {
		h.s.logger.Warn("tokenwise/gateway: an embeddings model without a price in the catalog: its tokens are counted, not its cost", "team", h.team, "model", model)
	}
	h.settle(ctx, budget.Settleable(budget.Exact(tok, pico))) // exact: the ledger rounds up once
	h.done(ctx, tok, 1)
	h.reportEmbeddings(model, tok, pico, false, nil)
}

// embeddingsAnswer is what the gateway reads of an embeddings answer.
type embeddingsAnswer struct {
	Model string `json:"model"`
	Usage *struct {
		// (Counts written as floats are read as the integers they are.)
		PromptTokens count `json:"prompt_tokens"`
		TotalTokens  count `json:"total_tokens"`
	} `json:"usage"`
}

// usable reports whether a has usage that can be charged: not a negative
// count (settled as given, it would take spend off the budget) nor one
// beyond middleware.MaxCount (a whole budget spent on one call), and not
// one that counts nothing (zeros, or none of the counts: a server that
// does not count, whose call is charged its estimate, as a chat call of
// a usage of zeros is).
func (a *embeddingsAnswer) usable() bool {
	return a.Usage != nil && a.Usage.PromptTokens >= 0 && a.Usage.TotalTokens >= 0 && a.tokens() > 0 && a.tokens() <= middleware.MaxCount
}

// tokens is what a usable answer's call used.
func (a *embeddingsAnswer) tokens() int64 {
	return int64(max(a.Usage.TotalTokens, a.Usage.PromptTokens))
}

// parseEmbeddingsAnswer reads a whole embeddings answer's model and
// usage; ok is false when it has no usable usage.
func parseEmbeddingsAnswer(body []byte) (*embeddingsAnswer, bool) {
	a := new(embeddingsAnswer)
	if json.Unmarshal(body, a) != nil || !a.usable() {
		return nil, false
	}
	return a, true
}

// scanKeep is how many of an answer's first and last bytes scannedBody
// keeps: an embeddings answer's usage and model come after its vectors
// (or, on some servers, before them), in far fewer bytes.
const scanKeep = 8 << 10

// scannedBody passes an embeddings answer on as it is read, keeping its
// first and last scanKeep bytes; when the answer ends, end gets its
// model and usage as read from them (nil: none readable; err: the answer
// was cut, or closed before its end), once: at its length's last byte
// when it has one (length >= 0), before that byte is passed on, so that
// a client that has the whole answer finds the call charged.
type scannedBody struct {
	io.ReadCloser
	length     int64 // the answer's Content-Length; -1: unknown
	head, tail []byte
	n          int64
	end        func(a *embeddingsAnswer, err error)
	once       sync.Once
}

func (b *scannedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.keep(p[:n])
	switch {
	case err == io.EOF:
		if b.length >= 0 && b.n < b.length {
			err = io.ErrUnexpectedEOF
			b.finish(err)
			break
		}
		b.finish(nil)
	case err != nil:
		b.finish(err)
	case b.n == b.length:
		b.finish(nil)
	}
	return n, err
}

func (b *scannedBody) Close() error {
	b.finish(errEmbeddingsCut)
	return b.ReadCloser.Close()
}

// keep adds p to the bytes kept: the first scanKeep in head; once the
// answer is longer, its last bytes in tail, a window of at least
// scanKeep (and at most twice as many) that goes on from head's, moved
// back to its start only when full, so that an answer read in small
// pieces costs a copy of each byte, not of the window, per read.
func (b *scannedBody) keep(p []byte) {
	b.n += int64(len(p))
	if room := scanKeep - len(b.head); room > 0 {
		if b.head == nil {
			b.head = make([]byte, 0, scanKeep)
		}
		take := min(room, len(p))
		b.head, p = append(b.head, p[:take]...), p[take:]
		if len(p) == 0 {
			return
		}
	}
	if b.tail == nil {
		b.tail = append(make([]byte, 0, 2*scanKeep), b.head...)
	}
	if len(p) >= scanKeep {
		b.tail = append(b.tail[:0], p[len(p)-scanKeep:]...)
		return
	}
	if len(b.tail)+len(p) > cap(b.tail) {
		b.tail = b.tail[:copy(b.tail, b.tail[len(b.tail)-scanKeep:])]
	}
	b.tail = append(b.tail, p...)
}

// finish calls end once: with the answer's model and usage when it was
// read to its end (err nil).
func (b *scannedBody) finish(err error) {
	b.once.Do(func() {
		if err != nil {
			b.end(nil, err)
			return
		}
		b.end(b.scan(), nil)
	})
}

// scan reads the answer's model and usage from the bytes kept: the whole
// answer when it fits in head, else the members "usage" and "model" in
// its tail, then its head (nil: no usable usage).
func (b *scannedBody) scan() *embeddingsAnswer {
	if b.tail == nil { // all in head
		a, _ := parseEmbeddingsAnswer(b.head)
		return a
	}
	a := new(embeddingsAnswer)
	for _, part := range [][]byte{b.tail, b.head} {
		// (Each member decoded apart: one that does not decode whole is
		// not taken in part.)
		if a.Usage == nil {
			var u embeddingsAnswer
			if decodeMember(part, "usage", &u.Usage) == nil {
				a.Usage = u.Usage
			}
		}
		if a.Model == "" {
			var m string
			if decodeMember(part, "model", &m) == nil {
				a.Model = m
			}
		}
	}
	if !a.usable() {
		return nil
	}
	return a
}

// decodeMember decodes into v the value of the last member name of a
// JSON object in part, a piece of a document: the last `"name"` followed
// by a colon (vectors are numbers and base64 strings, which have no
// quotes; an escaped quote in another string is preceded by a backslash).
func decodeMember(part []byte, name string, v any) error {
	key := []byte(`"` + name + `"`)
	for end := len(part); ; {
		i := bytes.LastIndex(part[:end], key)
		if i < 0 {
			return errNoMember
		}
		end = i
		if i > 0 && part[i-1] == '\\' {
			continue
		}
		rest := bytes.TrimLeft(part[i+len(key):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		return json.NewDecoder(bytes.NewReader(rest[1:])).Decode(v)
	}
}

var (
	errNoMember = errors.New("no such member")
	// errEmbeddingsCut is the failure of an embeddings answer closed
	// before its end.
	errEmbeddingsCut = errors.New("tokenwise/gateway: the embeddings answer was closed before its end")
)

// estimate counts a report-only hold's input (need), when it can; a hold
// of a budget or rate limits counted it before the call.
func (h *passHold) estimate() {
	if !h.reportOnly || h.input == nil {
		return
	}
	if n, ok := h.s.embeddingsInputTokens(h.model, h.input); ok {
		h.need = budget.Amount{Tokens: n, USDMicros: h.pl.embeddingsCost(h.model, n)}
	}
	h.input = nil
}

// unsuccessful reports whether resp is not a success; if so it releases
// h (the provider billed nothing; the rate limits keep the request it
// made) and shapes an error answer as an OpenAI error (shapeErrors).
func (h *passHold) unsuccessful(ctx context.Context, resp *http.Response) bool {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false // an answer, whatever its 2xx: charged as one
	}
	_ = h.s.shapeErrors(resp)
	h.settle(ctx, budget.Amount{})
	h.done(ctx, -1, 1)
	return true
}

// releaseEmbeddings frees what an embeddings call that got no answer
// holds; when lost is the error that ended it after it was sent, one the
// provider bills (middleware.UnansweredBilled: a timeout, the client gone), the call
// is charged its input instead (chargeUnanswered).
func (h *passHold) releaseEmbeddings(ctx context.Context, lost error) {
	if lost != nil {
		h.chargeUnanswered(ctx, lost)
		return
	}
	h.settle(ctx, budget.Amount{})
	h.done(ctx, 0, 0)
	h.reportEmbeddings("", 0, 0, false, errNoEmbeddings)
}

// chargeUnanswered settles an embeddings call that was sent to the
// upstream and ended without an answer (lost: its timeout, the run's
// deadline, the client gone) at its input — the tokens counted for its
// reservation (an embeddings call has no output), priced exactly — as
// the provider bills a call it processed and as the chain's Meter and
// budget bill a chat attempt that ended so; in its run's record, an
// estimate, failed.
func (h *passHold) chargeUnanswered(ctx context.Context, lost error) {
	h.estimate()
	tok := h.need.Tokens
	pico, _ := h.pl.embeddingsPico(h.model, tok)
	h.settle(ctx, budget.Settleable(budget.Exact(tok, pico)))
	h.done(ctx, tok, 1)
	h.reportEmbeddings("", tok, pico, tok > 0, fmt.Errorf("%w: %w", errNoEmbeddings, lost))
}

// errNoEmbeddings is the failure of an embeddings call that got no answer
// from the upstream, or an error answer.
var errNoEmbeddings = errors.New("tokenwise/gateway: the embeddings call got no answer from the upstream")

// ceilMicro rounds pico-dollars up to micro-dollars: a reservation's worst
// case (a settlement is exact: budget.Exact).
func ceilMicro(pico int64) int64 {
	q := pico / 1_000_000
	if pico%1_000_000 > 0 {
		q++
	}
	return q
}
