package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/sjson"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/internal/sendtrack"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
)

// A Responses call goes through its team's policy.fallback as a chat call
// goes through its chain: the call is sent to its (routed) model, and an
// error that fallback.on names — by default a 429, a 5xx, a timeout the
// upstream reports, a network failure, a context-window error (to a model
// with a larger window) — or the model's open breaker, or its rate
// limit's on_limit: fallback, moves it on to the next of
// fallback.models. Each model is retried first as fallback.retry says
// (backoff with jitter, the upstream's Retry-After honoured; a request
// that timed out after it reached the upstream is charged its input
// before its retry, which a ledger that cannot hold it refuses:
// responsesCall.admitRetry), and guarded
// by its circuit breaker: the same breaker as the team's chat calls to
// that model (shared with the other replicas through Redis).
//
// Each model is reserved on its own before it is sent, as the chain's
// budget layer sits under its fallback layer: a fallback model's worst
// case at its own price, in the team's and the run's ledgers, and
// admitted by its own rate limits; the model that answers is settled at
// its answer's usage, the others released. The request goes to the
// fallback model's upstream with the model in its body (and its
// max_output_tokens lowered to that model's maximum output when above
// it, as for a routed call); what the client
// gets is the answer of the model that answered, else the last model's
// error answer (shaped as an OpenAI error), else the gateway's own
// OpenAI-shaped error (a budget's refusal, an open breaker, a network
// failure). Once an answer has begun (a stream's status and headers) the
// call is the answer's: a stream cut later ends with its error event,
// never on another model. The team's timeouts bound each attempt as the
// chain's timeout layer does (call, first_token: an attempt that passes
// them before its answer begins is retried or moves on as a provider's
// timeout does), and the run's deadline the call as a whole. Under
// fallback.hedge a call that is not a stream is hedged as the chain
// hedges a chat call: sent to the next model too when its first has not
// answered after the hedge's delay; the first answer wins, and the other
// attempt is charged at its usage when its answer came as well, else at
// its input (cancelled: the provider bills a prompt it received).

// responsesCall is one Responses call through its team's fallback chain
// (a passLimits' chain). It is the proxy's transport for the call: its
// RoundTrip runs the chain. The attempts run one after the other, but for
// a hedge (a call that is not a stream, under a policy with
// fallback.hedge): then two run at once, each with its own hold and
// answer (responsesAttempt), and what they share is under mu.
type responsesCall struct {
	s     *Server
	team  string
	pl    *passLimits       // the team's policy the call runs under: each attempt is held under it
	req   *responsesRequest // as routed: req.Model is the first model tried
	body  []byte            // the body sent to req.Model
	up    *upstream         // req.Model's upstream
	query string            // the client's query, sent to another upstream after that one's base query
	path  string            // the call's path under the upstream's base URL
	run   *middleware.Run   // the run X-Run-Id names (nil: none), whose record gets the call
	chain middleware.Handler
	obs   middleware.Observer
	start time.Time
	// hedged: the call goes through the chain that hedges, whose two
	// attempts may both answer; each answer is then read whole when it
	// comes (see sendResponses).
	hedged bool
	// cascade: the models the call tries, in order, each through the
	// chain, until one's answer passes checks (responses_cascade.go; a
	// stream held back to be checked); nil: the call's model only.
	cascade []string
	checks  []route.NamedCheck
	// regen: the model that writes a final answer again, without tools
	// (responses_cascade.go); "": none.
	regen string
	// rule: why routing picked the model that answered — the team's rule,
	// then each step of the cascade and the regeneration (decide); moved:
	// routing moved the call to another model than the one asked for.
	rule  string
	moved bool

	bound *passBound // the call's clocks (nil: none): each attempt is bounded on its own

	out *http.Request // the proxy's request, to req.Model's upstream

	mu       sync.Mutex
	attempts []*responsesAttempt // every model tried, in the order they were (one refused before it was sent too)
	kept     *responsesAttempt   // the last attempt to fail, when it got an error answer: passed on should none answer

	cur    *responsesHold // after RoundTrip: the hold of the answer passed on (nil: none)
	passed string         // after RoundTrip: the model whose answer was passed on ("": none)
	// offRoute: after RoundTrip, the answer passed on is a fallback
	// model's, not the model's the chain was asked for.
	offRoute bool
}

// fellBack reports whether the answer c passed on is a fallback model's
// (false for a nil c).
func (c *responsesCall) fellBack() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offRoute
}

// outcome returns the model whose answer the call passed on (else the
// model tried last) and how many attempts the call made; 0 for a nil c.
func (c *responsesCall) outcome() (string, int) {
	if c == nil {
		return "", 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.attempts) == 0 {
		return "", 0
	}
	return cmp.Or(c.passed, c.attempts[len(c.attempts)-1].model), len(c.attempts)
}

// records returns the run's records of the call's attempts but skip (c.mu
// held; nil skip: all of them).
func (c *responsesCall) records(skip *responsesAttempt) []middleware.Attempt {
	var out []middleware.Attempt
	for _, a := range c.attempts {
		out = append(out, a.retried...) // (skip's too: they are the call's, not its answer's)
		if a != skip {
			out = append(out, a.rec)
		}
	}
	return out
}

// responsesAttempt is one model's attempt of a call: what it holds, its
// answer (a success, or an error answer), the context it was sent in, and
// its record for the run (once it ended).
type responsesAttempt struct {
	model string
	hold  *responsesHold // nil: nothing held
	resp  *http.Response
	actx  context.Context
	rec   middleware.Attempt
	final *responseObject // the answer's response object, when the cascade read it
	// err and sentAt are the error and the start of its latest request
	// to the upstream (sendResponses); retried, the records of its
	// requests that failed, were billed and were retried (admitRetry),
	// under the call's mu.
	err     error
	sentAt  time.Time
	retried []middleware.Attempt
	// aside: the answer's usage on the model it was billed at, once it
	// was set aside (charged, the client getting another model's answer:
	// setAside); nil otherwise.
	aside *cache.Billed
}

type (
	responsesCallKey    struct{}
	responsesAttemptKey struct{}
)

// newResponsesCall returns the call of req (routed, read from body), sent
// to up under path; nil when the team's chain could not be built (the
// call is then sent as it is, held and billed by one reservation as an
// attempt of the chain is: Server.reserveResponses, releaseLost). A call that is not a stream goes through
// the chain that hedges, when the policy hedges.
func (s *Server) newResponsesCall(pl *passLimits, team string, req *responsesRequest, body []byte, up *upstream, path string, run *middleware.Run, stream bool) *responsesCall {
	if pl.chain == nil {
		return nil
	}
	chain, hedged := pl.chain, pl.hedged != nil && !stream
	if hedged {
		chain = pl.hedged
	}
	c := &responsesCall{s: s, team: team, pl: pl, req: req, body: body, up: up, path: path, run: run,
		chain: chain, obs: pl.observer, start: time.Now(), hedged: hedged}
	if c.cascade = cascadeOf(pl.pol, req); c.cascade != nil {
		c.checks = cascadeChecks(pl.pol)
	}
	c.regen = regenOf(pl.pol, req)
	c.rule, c.moved = req.rule, req.moved
	return c
}

// decide records that routing moved the call from one model to another,
// why, in its rule, and tells the team's observers (a RouteDecided event).
func (c *responsesCall) decide(from, to, why string) {
	if c.rule == "" {
		c.rule = why
	} else {
		c.rule += "; " + why
	}
	c.moved = true
	if c.req.stage == "" {
		c.req.stage = instrument.DetectStage(responsesConversation(c.req))
	}
	c.s.observe(c.team, middleware.RouteDecided{From: from, To: to, Rule: c.rule, Stage: c.req.stage})
}

// newResponsesChain returns the chain of a team's Responses calls under
// pl's policy: its fallback, each model's reservation (step), its
// breakers and retries, and the sender; and, when the policy hedges, the
// same with the fallback that hedges.
func (s *Server) newResponsesChain(pl *passLimits) {
	if s.reg == nil {
		return
	}
	res, err := resilienceOf(s.reg, pl.pol)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: the fallback section of a policy does not build: responses calls are sent without it", "policy", pl.pol.Name, "err", err)
		return
	}
	pl.chain = middleware.Then(middleware.HandlerFunc(sendResponses), res.Fallback, stepResponses, res.Breakers, res.Retry)
	if res.Hedged != nil {
		pl.hedged = middleware.Then(middleware.HandlerFunc(sendResponses), res.Hedged, stepResponses, res.Breakers, res.Retry)
	}
	pl.observer = res.Observer
}

// resilienceOf builds a policy's fallback section (a variable: tests
// make it fail, which a policy that loaded does not).
var resilienceOf = (*llmwrap.Registry).Resilience

func callOf(ctx context.Context) *responsesCall {
	return ctx.Value(responsesCallKey{}).(*responsesCall)
}

func attemptOf(ctx context.Context) *responsesAttempt {
	return ctx.Value(responsesAttemptKey{}).(*responsesAttempt)
}

// RoundTrip sends the proxy's request out through the call's chain: with
// each of its cascade's models in turn until one's answer passes the
// cascade's checks, or with its model alone.
func (c *responsesCall) RoundTrip(out *http.Request) (*http.Response, error) {
	c.out = out
	// The chain runs in the call's context; each attempt is sent in one of
	// its own, under the team's timeouts (sendResponses): an attempt that
	// times out is retried or moves on as a provider's timeout does.
	ctx := context.WithValue(out.Context(), responsesCallKey{}, c)
	if c.obs != nil {
		ctx = middleware.WithObserver(ctx, c.obs)
	}
	// The request's tools are read now, once: a hedge's two attempts
	// reserve concurrently, each with the request (or a copy of it).
	c.req.functionTools()
	steps := c.cascade
	if len(steps) == 0 {
		steps = []string{c.req.Model}
	} else if steps[0] != c.req.Model {
		c.decide(c.req.Model, steps[0], "cascade: starts at "+steps[0])
	}
	var pass *responsesAttempt // the attempt whose answer the client gets
	var err error
	var asked string // the model the chain was asked for when it gave pass
	for i, m := range steps {
		asked = m
		var resp *middleware.Response
		resp, err = c.chain.Handle(ctx, &middleware.Request{Model: m})
		pass = nil
		if err == nil && resp != nil {
			pass, _ = resp.Native.(*responsesAttempt)
		}
		if i == len(steps)-1 {
			break
		}
		if pass == nil {
			if !route.Escalates(ctx, err) {
				break
			}
			c.decide(m, steps[i+1], "cascade: "+m+" failed → "+steps[i+1])
			continue
		}
		rej := c.check(pass, m)
		if rej == nil {
			break
		}
		c.reject(ctx, pass, rej)
		c.decide(m, steps[i+1], "cascade: "+m+" "+rej.Check+" failed → "+steps[i+1])
		pass = nil
	}
	if err == nil {
		before := pass
		if pass, err = c.regenerate(ctx, pass); pass != before {
			asked = c.regen
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// An answer of another model than the chain was asked for is a
	// fallback's (the model failed, or its breaker is open): the cache
	// does not keep it.
	c.offRoute = pass != nil && pass.model != asked
	if pass == nil {
		pass = c.kept // the last error answer, should no model answer
	}
	c.letGo(pass)
	if pass != nil {
		// Its hold settles it (charge), with the attempts before it in
		// the run's record.
		if h := pass.hold; h != nil {
			h.run, h.reports, h.requested, h.begun, h.prior = c.run, true, cmp.Or(c.req.asked, c.req.Model), c.start, c.records(pass)
			h.rule, h.moved = c.rule, c.moved
		}
		c.cur, c.passed = pass.hold, pass.model
		c.bound.answer(pass.actx)
		pass.resp.Request = out
		return pass.resp, nil
	}
	if err == nil {
		err = errNoAnswer // (a chain that ends well has an answer)
	}
	// The call is in its run's record, failed, also when no attempt was
	// sent (a budget's, a rate limit's or an open breaker's refusal), as a
	// chat call refused by its chain is. It costs what its attempts were
	// charged: an answer a cascade rejected, a hedge's attempt that lost.
	atts := c.records(nil)
	var total int64
	var usage middleware.Usage
	for _, a := range atts {
		total, usage = middleware.SatAdd(total, a.CostPico), usage.Add(a.Usage)
	}
	model := c.req.Model
	if len(c.attempts) > 0 {
		model = c.attempts[len(c.attempts)-1].model
	}
	c.s.report(c.team, c.run, middleware.CallRecord{CallFacts: middleware.CallFacts{Team: c.team, Rule: c.rule, Routed: c.moved,
		RequestedModel: cmp.Or(c.req.asked, c.req.Model), Model: model, CostPico: total, Attempts: atts},
		Usage: usage, Latency: time.Since(c.start), Start: c.start, Err: err})
	return nil, err
}

// letGo lets go of the answers of every attempt but pass (c.mu held): an
// answer a hedge's other attempt got as well is charged at its usage and
// closed (the provider billed it); an error answer is closed (its hold
// let go of when it came).
func (c *responsesCall) letGo(pass *responsesAttempt) {
	ctx := context.WithoutCancel(c.out.Context())
	for _, a := range c.attempts {
		if a == pass || a.resp == nil {
			continue
		}
		resp := a.resp
		a.resp = nil
		if resp.StatusCode < 400 && a.hold != nil {
			resp.Request = c.out.WithContext(ctx)
			_ = a.hold.charge(resp)
		}
		_ = resp.Body.Close()
	}
}

// charge is the answer's hook: the answering model's hold settles it.
func (c *responsesCall) charge(resp *http.Response) error {
	if c.cur == nil {
		return c.s.reportCut(resp)
	}
	return c.cur.charge(resp)
}

// release frees what the call still holds (when it got no answer).
func (c *responsesCall) release(ctx context.Context) {
	if c.cur != nil {
		c.cur.release(ctx)
	}
}

// stepResponses reserves each model the fallback tries: the model's worst
// case in the budget, its admission by the rate limits; what it holds is
// let go of when it gets no answer the caller will read.
func stepResponses(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, mreq *middleware.Request) (*middleware.Response, error) {
		c := callOf(ctx)
		start := time.Now()
		hedge := middleware.HedgedAttempt(ctx)
		req := c.req
		if mreq.Model != req.Model {
			r := *req
			r.Model = mreq.Model
			req = &r
		}
		a := &responsesAttempt{model: mreq.Model}
		c.mu.Lock()
		c.attempts = append(c.attempts, a)
		c.mu.Unlock()
		h, err := c.s.holdResponses(ctx, c.pl, c.team, req, c.run)
		if err != nil {
			c.mu.Lock()
			a.rec = middleware.Attempt{Model: mreq.Model, Err: err, Hedge: hedge}
			c.kept = nil // the last model's error is this refusal
			c.mu.Unlock()
			return nil, err
		}
		if h != nil {
			h.reports = false // the call is reported once, by the hold passed on (RoundTrip)
			h.start = start
		}
		a.hold = h
		nctx := context.WithValue(ctx, responsesAttemptKey{}, a)
		if h != nil {
			// A retry of the model (fallback.retry, below) is admitted
			// by the model's rate limits as a request of its own, when
			// it is sent (waiting for its slot or refused, as the first
			// was), then once what its failed request was billed is
			// charged: that charge is settled at once, so it comes last
			// (a retry the rate limits refused after it would leave the
			// failed request charged twice, here and as the call's
			// last attempt). A retry the budget refuses is not sent:
			// the ticket gives its request back when it is done (the
			// requests sent).
			nctx = middleware.WithRetryAdmission(nctx, func(rctx context.Context) error {
				if err := h.ticket.AdmitRetry(rctx); err != nil {
					return err
				}
				return c.admitRetry(ctx, a)
			})
		}
		_, err = next.Handle(nctx, mreq)
		rec := middleware.Attempt{Model: mreq.Model, Latency: time.Since(start), Err: err, Hedge: hedge}
		if err != nil && h != nil {
			rec.Usage, rec.CostPico = c.failed(ctx, a, err)
			rec.Estimated = !rec.Usage.IsZero() // a hedge's loser, a timed-out or cancelled attempt: its input, counted by the gateway
		}
		c.mu.Lock()
		a.rec = rec
		if err != nil {
			c.kept = nil // the last model's error is what ended it: its error answer, if it got one
			if a.resp != nil {
				c.kept = a
			}
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return &middleware.Response{Model: mreq.Model, Native: a}, nil
	})
}

// failed lets go of what attempt a holds, which err ended: an attempt
// sent without an answer that lost a hedge, timed out (its call,
// first_token or total timeout, the run's deadline) or was cancelled (its
// client went away: middleware.UnansweredBilled) is charged its input,
// as the provider bills a prompt it received and as the chain's Meter and
// budget bill a chat attempt that ended so (its usage and cost returned,
// for the run's record: an estimate); any other is freed. (An error answer it got is kept, to pass
// on should no other model answer: its hold's later settlement is then a
// no-op.)
func (c *responsesCall) failed(ctx context.Context, a *responsesAttempt, err error) (middleware.Usage, int64) {
	ctx = context.WithoutCancel(ctx)
	if a.resp == nil && a.hold.sent && (errors.Is(err, fallback.ErrHedgeLost) || middleware.UnansweredBilled(err)) {
		return a.hold.chargeInput(ctx)
	}
	a.hold.drop(ctx)
	return middleware.Usage{}, 0
}

// admitRetry charges, before a retry of attempt a's model, what its
// request that just failed was billed: one sent without an answer that
// timed out (middleware.UnansweredBilled: its call or first_token
// timeout) is charged its input — the provider bills a prompt it
// received, as the chain's budget charges a chat attempt retried after a
// timeout — which the hold's reservation, one request's worst case that
// the retry may spend whole, does not cover. It is reserved in the
// budget's ledgers (the run's and the team's) and settled at once at that
// input; a ledger that cannot hold it refuses the retry (the budget's
// error: the retry layer returns the provider's failure, which failed
// charges), so that no request more spends past a limit. A request that
// was not billed (an error answer, one never sent, a network failure) is
// retried as it is. The charge is in the run's record, an estimate, with
// the call's attempts.
func (c *responsesCall) admitRetry(ctx context.Context, a *responsesAttempt) error {
	h, err := a.hold, a.err
	if a.resp != nil || !h.sent || !middleware.UnansweredBilled(err) {
		return nil
	}
	if b := h.pl.budget; b != nil && (h.in > 0 || h.inPico > 0) {
		charge := budget.Settleable(budget.Exact(h.in, h.inPico))
		hold, rerr := b.Reserve(ctx, charge.Ceil())
		if rerr != nil {
			if ee, ok := errors.AsType[*budget.ExceededError](rerr); ok {
				ee.Model = h.model
			}
			return rerr
		}
		hold.Settle(context.WithoutCancel(ctx), charge)
	}
	rec := middleware.Attempt{Model: a.model, Latency: time.Since(a.sentAt), Err: err, Hedge: middleware.HedgedAttempt(ctx),
		Usage: middleware.Usage{InputTokens: h.in}, CostPico: h.inPico}
	rec.Estimated = !rec.Usage.IsZero()
	c.mu.Lock()
	a.retried = append(a.retried, rec)
	c.mu.Unlock()
	return nil
}

// drop frees what a model the call moved on from holds, without a record
// in the run: the rate limits count a request that reached the upstream.
func (h *responsesHold) drop(ctx context.Context) {
	h.settle(ctx, budget.Amount{})
	if h.sent {
		h.done(ctx, -1, 1)
	} else {
		h.done(ctx, 0, 0)
	}
}

// sendResponses sends the call to the model of mreq: the proxy's request
// as it is for the call's own model; for a fallback model, the body with
// that model and the request to its upstream. An error answer is read
// (its OpenAI error tells what failed) and kept as the attempt's answer,
// to pass on should no other model answer.
func sendResponses(ctx context.Context, mreq *middleware.Request) (_ *middleware.Response, err error) {
	c, a := callOf(ctx), attemptOf(ctx)
	a.resp, a.sentAt = nil, time.Now()
	defer func() { a.err = err }() // (read by admitRetry, before a retry)
	body, up := c.body, c.up
	if rb, ok := mreq.Native.(regenBody); ok {
		body = rb // a final answer's regeneration: without tools
	}
	if mreq.Model != c.req.Model {
		b, ok := withModel(body, mreq.Model, maxOutput(c.pl.pol, mreq.Model))
		if !ok {
			return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", NoRetry: true,
				Message: "tokenwise/gateway: the request's model cannot be rewritten to fall back to " + strconv.Quote(mreq.Model)}
		}
		body, up = b, c.s.pick(mreq.Model)
	}
	// The attempt's clocks start now, not before the model's reservation
	// (a rate limit's wait for admission is not the provider's time). Its
	// context is the chain's: an attempt that lost a hedge is cancelled.
	actx := ctx
	if c.bound != nil {
		// In a call that may hedge, an attempt begins beside the others:
		// a retry of the first model must not end the hedge's.
		actx = c.bound.begin(actx, c.hedged, mreq.Model)
	}
	a.actx = actx
	o := c.out.WithContext(actx)
	o.Body, o.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	o.GetBody = nil
	if up != c.up {
		o.URL = up.base.JoinPath(c.path)
		o.URL.RawQuery = joinQuery(up.base.RawQuery, c.query)
		o.Header = o.Header.Clone()
		for k := range c.up.auth {
			o.Header.Del(k)
		}
		up.credentials(o.Header)
	}
	if a.hold != nil {
		a.hold.sent = true
	}
	o, sent := sendtrack.Track(c.s.pass, o)
	var resp *http.Response
	resp, err = c.s.pass.RoundTrip(o)
	if a.hold != nil && (err == nil || sent.Sent()) {
		a.hold.sends.Add(1)
	}
	if err != nil {
		if a.hold != nil && !sent.Sent() {
			// Ended while connecting or before the body was written: the
			// upstream never had the request, which nobody bills.
			a.hold.sent = false
		}
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx) // the call's end (the client's, the run's deadline) or a lost hedge
		case actx.Err() != nil:
			// The attempt's timeout (call, first_token).
			return nil, &middleware.ProviderError{Kind: middleware.ErrTimeout, Provider: up.Name, Model: mreq.Model, Err: context.Cause(actx)}
		}
		return nil, &middleware.ProviderError{Kind: middleware.ErrNetwork, Provider: up.Name, Model: mreq.Model, Err: err}
	}
	labelStream(resp)
	embeddedError(resp)
	if resp.StatusCode < 400 {
		if ferr := c.bound.firstEvent(resp); ferr != nil {
			// A stream that began without an event: no answer when its
			// first_token (or call) passed, retried or moved on as a
			// provider's timeout is.
			_ = resp.Body.Close()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, &middleware.ProviderError{Kind: middleware.ErrTimeout, Provider: up.Name, Model: mreq.Model, Err: ferr}
		}
		if c.hedged && !isEventStream(resp) {
			// Read whole now, under the attempt's clocks: should the other
			// attempt answer too, the one that loses is cancelled, and its
			// answer, read, is charged at its usage (letGo), not at its
			// reservation.
			readWhole(resp)
			if ctx.Err() != nil { // cut by the call's end or a lost hedge: no answer
				_ = resp.Body.Close()
				return nil, context.Cause(ctx)
			}
		}
		a.resp = resp
		return &middleware.Response{Model: mreq.Model}, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	a.resp = resp
	e, _ := readErrorObject(b)
	ra := httperr.ParseRetryAfter(resp.Header, time.Now())
	if ra == 0 {
		ra = httperr.BodyRetryDelay(b) // Gemini's RetryInfo
	}
	return nil, &middleware.ProviderError{Kind: httperr.Classify(resp.StatusCode, e.code, e.typ), Provider: up.Name, Model: mreq.Model,
		StatusCode: resp.StatusCode, Type: e.typ, Code: e.code, Message: e.message, RetryAfter: ra}
}

// readWhole reads an answer's body (up to maxResponsesEvent bytes: a
// JSON answer, or a stream the cascade holds back) and gives resp the
// body back: what was read (an *answerBody), then, when the read failed,
// its error (a cut answer stays cut); a longer answer, what was read and
// the rest unread.
func readWhole(resp *http.Response) {
	b, whole, err := readAnswer(resp, maxResponsesEvent)
	if whole && err != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errorReader{err}))
	}
}

// errorObject is what the gateway reads of an error body's error object.
type errorObject struct{ message, typ, code string }

// readErrorObject reads the error object of b ({"error": {"message",
// "type", "code"}}; a code may be a string or a number), and whether b is
// one: a JSON object whose "error" is an object with a string message.
func readErrorObject(b []byte) (errorObject, bool) {
	var top struct {
		Error *struct {
			Message *string         `json:"message"`
			Type    json.RawMessage `json:"type"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &top) != nil || top.Error == nil || top.Error.Message == nil {
		return errorObject{}, false
	}
	text := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		if n := bytes.TrimSpace(raw); len(n) > 0 && (n[0] == '-' || n[0] >= '0' && n[0] <= '9') {
			return string(n) // a numeric code (OpenRouter's 429)
		}
		return ""
	}
	return errorObject{message: *top.Error.Message, typ: text(top.Error.Type), code: text(top.Error.Code)}, true
}

// embeddedError gives resp, a 2xx JSON answer that is an error object in
// the place of an answer (OpenRouter answers some failures so), the
// status its code stands for: it is that error, never an answer charged
// at its reservation (peekEmbeddedError). Any other answer is left as it
// is. The sender of the fallback chain reads each answer with it; the
// hook of a call sent outside the chain, embeddedErrors.
func embeddedError(resp *http.Response) {
	if resp.StatusCode < 200 || resp.StatusCode >= 300 || isEventStream(resp) || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	if st, ok := peekEmbeddedError(resp); ok {
		resp.StatusCode, resp.Status = st, strconv.Itoa(st)+" "+http.StatusText(st)
	}
}

// embeddedErrors returns the answer's hook modify after embeddedError:
// for a policed call sent outside the fallback chain.
func embeddedErrors(modify func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		embeddedError(resp)
		return modify(resp)
	}
}

// maxErrorPeek bounds how much of a 2xx JSON answer peekEmbeddedError
// reads: an error object is short, a response is most often longer.
const maxErrorPeek = 64 << 10

// peekEmbeddedError reads the first bytes of a 2xx JSON answer and gives
// resp its body back whole; when the whole answer is an error object
// instead of a response — no id, object, status, output or usage beside
// its "error" (a response object that failed has its own "error", and is
// an answer, billed) — it returns the HTTP status its code or type stands
// for (httperr.EmbeddedStatus), and true.
func peekEmbeddedError(resp *http.Response) (int, bool) {
	b, whole, err := readAnswer(resp, maxErrorPeek)
	if err != nil {
		// Cut: passed on as it came, what was read, then the cut.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errorReader{err}))
	}
	if !whole || err != nil {
		return 0, false // (longer: passed on whole)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return 0, false
	}
	for _, k := range [...]string{"id", "object", "status", "output", "usage"} {
		if _, ok := top[k]; ok {
			return 0, false
		}
	}
	e, ok := readErrorObject(b)
	if !ok {
		return 0, false
	}
	return httperr.EmbeddedStatus(e.code, e.typ), true
}

// withModel returns body with its model set to model, and true; false
// when the rewrite does not reach the member as JSON readers do (an
// escaped member name). A max_output_tokens above maxOut, the model's
// maximum output (0: unknown), is lowered to it: the provider refuses a
// larger one with a bad request (the client's, for the model it asked
// for, may be larger than the model the call moved to can give).
func withModel(body []byte, model string, maxOut int64) ([]byte, bool) {
	out, err := sjson.SetBytes(slices.Clip(body), "model", model)
	var check struct {
		Model     string       `json:"model"`
		MaxOutput *json.Number `json:"max_output_tokens"`
	}
	if err != nil || json.Unmarshal(out, &check) != nil || check.Model != model {
		return nil, false
	}
	if maxOut > 0 && check.MaxOutput != nil {
		if n, err := check.MaxOutput.Int64(); err == nil && n > maxOut {
			if fit, ok := withMaxOutput(out, maxOut); ok {
				out = fit
			}
		}
	}
	return out, true
}

// withMaxOutput returns body with its max_output_tokens set to n, and
// true; false when the rewrite does not reach the member as JSON readers
// do.
func withMaxOutput(body []byte, n int64) ([]byte, bool) {
	out, err := sjson.SetBytes(body, "max_output_tokens", n)
	var check struct {
		MaxOutput *int64 `json:"max_output_tokens"`
	}
	if err != nil || json.Unmarshal(out, &check) != nil || check.MaxOutput == nil || *check.MaxOutput != n {
		return nil, false
	}
	return out, true
}

// errorReader is a body's read error, replayed after what was read of it.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }
