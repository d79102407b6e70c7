package langchaingo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tmc/langchaingo/llms"

	"github.com/tokenwise/tokenwise/internal/httperr"
	"github.com/tokenwise/tokenwise/middleware"
)

// Models maps model names to the langchaingo models that serve them. A name
// is what the chain routes by, budgets and prices, and what the inner model
// is asked for (llms.WithModel), so use the provider's model names
// ("gpt-4o-mini"), not aliases. One llms.Model may serve several names.
type Models map[string]llms.Model

// Option configures a [Model].
type Option interface{ apply(*config) }

type config struct {
	defaultModel string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithDefaultModel names the model of calls that set no llms.WithModel.
// Without it, a Model with exactly one entry in its Models uses that one,
// and otherwise calls must name their model (or a router in the chain must
// pick one).
func WithDefaultModel(name string) Option {
	return optionFunc(func(c *config) { c.defaultModel = name })
}

// Model is an llms.Model that runs every call through a tokenwise
// middleware chain, whose innermost handler calls the langchaingo model
// named by the (possibly rerouted) request. It is safe for concurrent use.
type Model struct {
	provider *provider
	def      string
	handler  middleware.Handler
}

var (
	_ llms.Model          = (*Model)(nil)
	_ llms.ReasoningModel = (*Model)(nil)
)

// New returns a Model that serves calls with models through mw (nil means
// no middleware: calls go straight to the models). The Models map is
// copied.
//
// A nil model in models (nil, or a nil pointer such as the *openai.LLM that
// openai.New returns with an error) makes every call of the Model fail
// with an error matching [ErrNilModel] that names it: such a model is
// almost always one whose constructor's error was dropped.
func New(models Models, mw middleware.Middleware, opts ...Option) *Model {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	p := newProvider(models)
	if cfg.defaultModel == "" && len(p.known) == 1 {
		cfg.defaultModel = p.known[0]
	}
	m := &Model{provider: p, def: cfg.defaultModel, handler: p}
	if mw != nil {
		m.handler = mw(p)
	}
	return m
}

// DefaultModel returns the name used for calls that name no model.
func (m *Model) DefaultModel() string { return m.def }

// GenerateContent converts the call to a core request, runs it through the
// chain and converts the answer back. Streaming calls (StreamingFunc,
// StreamingReasoningFunc) stream through the chain: the caller's funcs
// receive what the chain lets through. The response is always the caller's
// own copy.
func (m *Model) GenerateContent(ctx context.Context, messages []llms.MessageContent, options ...llms.CallOption) (*llms.ContentResponse, error) {
	if err := m.provider.nilErr; err != nil {
		return nil, err
	}
	req, fw, err := buildRequest(m.def, m.provider.partition, m.provider.servedByOpenAI, messages, options)
	if err != nil {
		return nil, err
	}
	if fw != nil {
		req.Stream = fw.send
	}
	// Only the Models can serve a call: no layer moves it to another
	// model (middleware.WithServedModels).
	ctx = middleware.WithServedModels(ctx, m.provider.known)
	resp, err := middleware.SafeHandle(ctx, m.handler, req, "langchaingo model")
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("tokenwise/langchaingo: the middleware chain returned no response and no error")
	}
	return contentResponse(resp), nil
}

// Call generates a completion for a single prompt; it goes through
// GenerateContent.
//
// Deprecated: as llms.Model's Call, kept for compatibility. Use
// GenerateContent or llms.GenerateFromSinglePrompt.
func (m *Model) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, m, prompt, options...)
}

// SupportsReasoning reports whether the default model supports reasoning
// (llms.ReasoningModel); false when it does not implement the interface.
func (m *Model) SupportsReasoning() bool {
	r, ok := m.provider.inner[m.def].llm.(llms.ReasoningModel)
	return ok && r.SupportsReasoning()
}

// CreateEmbedding creates embeddings with the default model, when it
// implements embeddings.EmbedderClient. Embedding calls do not go through
// the chain (the core models chat completions only).
func (m *Model) CreateEmbedding(ctx context.Context, texts []string) ([][]float32, error) {
	if err := m.provider.nilErr; err != nil {
		return nil, err
	}
	im, ok := m.provider.inner[m.def]
	if !ok {
		return nil, &UnknownModelError{Model: m.def, Known: m.provider.known}
	}
	inner := im.llm
	e, ok := inner.(interface {
		CreateEmbedding(ctx context.Context, texts []string) ([][]float32, error)
	})
	if !ok {
		return nil, fmt.Errorf("%w: %q is served by a %T", ErrNoEmbeddings, m.def, inner)
	}
	return e.CreateEmbedding(ctx, texts)
}

// Provider returns the innermost handler of a [Model]'s chain: it serves a
// core request with the langchaingo model named by req.Model. Requests that
// came from a Model are sent with the caller's original messages and
// options, overridden where the chain changed them; others are converted
// from the core request alone. It is safe for concurrent use. As with
// [New], a nil model in models fails every call with [ErrNilModel].
func Provider(models Models) middleware.Handler { return newProvider(models) }

type provider struct {
	known  []string // sorted names
	inner  map[string]innerModel
	nilErr error // the nil models of Models, which fail every call; nil when none
	// partition is what the models add to every request on their own
	// (modelsPartition), which a response cache keys on.
	partition string
}

// innerModel is what the provider keeps per model name.
type innerModel struct {
	llm       llms.Model
	name      string          // the backend's name for errors ("openai")
	withModel llms.CallOption // llms.WithModel(model name), built once
}

func newProvider(models Models) *provider {
	p := &provider{inner: make(map[string]innerModel, len(models))}
	var nils []string
	var nilType reflect.Type
	for name, m := range models {
		if isNil(m) {
			nils = append(nils, name)
			if m != nil {
				nilType = reflect.TypeOf(m)
			}
			continue
		}
		p.known = append(p.known, name)
		p.inner[name] = innerModel{llm: m, name: providerName(m), withModel: llms.WithModel(name)}
	}
	slices.Sort(p.known)
	p.partition = modelsPartition(p.known, p.inner)
	if len(nils) > 0 {
		slices.Sort(nils)
		p.nilErr = nilModelError(nils, nilType)
	}
	return p
}

// servedByOpenAI reports whether model is served by langchaingo's openai
// backend.
func (p *provider) servedByOpenAI(model string) bool {
	im, ok := p.inner[model]
	return ok && im.name == "openai"
}

// generate runs the inner model's GenerateContent with fctx (ctx with the
// provider's failure slot). A model may ignore its context (a model in
// process, a client without deadlines): when ctx can end, the call runs on
// a goroutine of its own and is given up on when ctx ends, with the
// context's error (which classify and the chain's timeout layer type as
// for a model that honours its context). The streaming funcs of ps, if
// any, then deliver nothing more to the chain (a chunk already being
// delivered finishes first) and the model's late answer is dropped; the
// goroutine ends when the model returns. A panic on that goroutine is
// returned as a *middleware.PanicError.
func generate(ctx context.Context, fctx *failureContext, llm llms.Model, call providerCall, ps *providerStream) (*llms.ContentResponse, error) {
	done := ctx.Done()
	if done == nil {
		return llm.GenerateContent(fctx, call.messages, call.options...)
	}
	type result struct {
		cr  *llms.ContentResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			// A panic of the model or of the chain's stream functions
			// is the call's error, as SafeHandle makes it on the
			// caller's goroutine; a late one is dropped with the answer.
			if v := recover(); v != nil {
				r = result{err: middleware.Recovered(ctx, "langchaingo model", v)}
			}
			ch <- r
		}()
		r.cr, r.err = llm.GenerateContent(fctx, call.messages, call.options...)
	}()
	select {
	case r := <-ch:
		return r.cr, r.err
	case <-done:
	}
	if ps != nil {
		ps.abandon()
	}
	select {
	case r := <-ch: // it returned as ctx ended: its answer stands
		return r.cr, r.err
	default:
		return nil, ctx.Err()
	}
}

// isNil reports whether m is nil or holds a nil pointer (or map, func,
// chan, slice, interface), whose methods would dereference it.
func isNil(m llms.Model) bool {
	if m == nil {
		return true
	}
	v := reflect.ValueOf(m)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// nilModelError names the nil models of a Models and their likely cause;
// t is the type of one of them when it is a typed nil.
func nilModelError(names []string, t reflect.Type) error {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	what := "the llms.Model of model " + quoted[0] + " is nil"
	if len(names) > 1 {
		what = "the llms.Models of models " + strings.Join(quoted, ", ") + " are nil"
	}
	if t != nil {
		what += " (a nil " + t.String() + ")"
	}
	return fmt.Errorf("%w: %s: its constructor (openai.New, anthropic.New, ...) most likely returned an error that was dropped; check that error", ErrNilModel, what)
}

// providerName names the backend of a model by its package ("openai",
// "anthropic", ...).
func providerName(m llms.Model) string {
	t := reflect.TypeOf(m)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return ""
	}
	return path.Base(t.PkgPath())
}

func (p *provider) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	if p.nilErr != nil {
		return nil, p.nilErr
	}
	inner, ok := p.inner[req.Model]
	if !ok {
		return nil, &UnknownModelError{Model: req.Model, Known: p.known}
	}
	if ctx.Err() != nil {
		// Ended before it began (a retry whose wait ran into the call's
		// deadline): nothing was sent, which nobody bills.
		return nil, &middleware.NotSentError{Err: classify(ctx, ctx.Err(), callFacts{provider: inner.name, model: req.Model})}
	}
	nat, _ := req.Native.(*nativeRequest)
	call, err := providerCallFor(req, nat, inner.withModel)
	if err != nil {
		return nil, err
	}
	var ps *providerStream
	switch {
	case req.Stream != nil:
		var caller streamMode
		if nat != nil {
			caller = nat.stream
		}
		mode := innerMode(caller)
		ps = &providerStream{stream: req.Stream, mode: mode, parseTools: len(req.Tools) > 0}
		var fn func(context.Context, []byte) error
		var rfn func(context.Context, []byte, []byte) error
		if mode&streamContent != 0 {
			fn = ps.content
		}
		if mode&streamReasoning != 0 {
			rfn = ps.reasoning
		}
		call.options = append(call.options, func(o *llms.CallOptions) { o.StreamingFunc, o.StreamingReasoningFunc = fn, rfn })
	case nat != nil && nat.stream != 0:
		// The chain made the call a plain one: the caller's funcs must not
		// run behind its back.
		call.options = append(call.options, func(o *llms.CallOptions) { o.StreamingFunc, o.StreamingReasoningFunc = nil, nil })
	}

	fctx := &failureContext{Context: ctx}
	cr, err := generate(ctx, fctx, inner.llm, call, ps)
	if err != nil {
		facts := callFacts{provider: inner.name, model: req.Model, failure: &fctx.slot, streaming: ps != nil}
		if ps != nil {
			facts.streamErr = ps.err
		}
		err = classify(ctx, err, facts)
		others := fctx.slot.otherChoices()
		if ps != nil && (ps.acc.Chunks() > 0 || len(others) > 0) {
			// The provider may already charge for what it streamed: the
			// partial answer goes with the error, for the budget to bill,
			// with what the other choices (n > 1) streamed.
			partial := ps.acc.Response()
			partial.Model = cmp.Or(fctx.slot.answeredModel(), req.Model)
			partial.OtherChoices = others
			// The usage the stream reported before it was cut (in every
			// chunk, on vLLM and Gemini), which NewTransport, installed,
			// read: the provider's count, billed as the go-openai
			// transport bills it (none: the budget's estimate).
			partial.Usage = fctx.slot.streamedUsage()
			return partial, err
		}
		if u := fctx.slot.streamedUsage(); !u.IsZero() && errors.Is(err, middleware.ErrMalformed) {
			// An answer without choices that counts a usage, which
			// NewTransport, installed, read: the provider bills that
			// usage, which the budget and the Meter charge (as through
			// the go-openai adapter); the call is still malformed.
			if t := fctx.slot.serviceTier(); t != "" {
				u.ServiceTier = t
			}
			return &middleware.Response{Model: cmp.Or(fctx.slot.answeredModel(), req.Model), Usage: u}, err
		}
		// The same answer, read by the go-openai adapter's Transport
		// under NewTransport: its malformed error's cause carries the
		// usage.
		if bad := (*middleware.AnswerMalformedError)(nil); errors.As(err, &bad) && !bad.Usage.IsZero() && !bad.Usage.Implausible() {
			return &middleware.Response{Model: cmp.Or(bad.Model, req.Model), Usage: bad.Usage}, err
		}
		return nil, err
	}
	// The tier the provider billed the tokens at, which the backend does
	// not decode: NewTransport, installed, read it.
	resp, ok := coreResponse(cr, req, fctx.slot.serviceTier())
	if ok {
		// The model the provider says answered, which the backend does
		// not return: NewTransport, installed, read it. The call is
		// billed as it (middleware.BilledModel: a dated snapshot may
		// have its own price).
		if m := fctx.slot.answeredModel(); m != "" {
			resp.Model = m
			if nr, ok := resp.Native.(*nativeResponse); ok {
				nr.view.Model = m
			}
		}
	}
	if !ok {
		return nil, &middleware.ProviderError{Kind: middleware.ErrMalformed, Provider: inner.name, Model: req.Model,
			Message: "the model returned no choices"}
	}
	// The cached input tokens DeepSeek and Moonshot count beside the
	// prompt's, which the backend does not read: NewTransport, installed,
	// read them. Billed, and the caller still gets the backend's answer as
	// it is (the view it is compared with has them too).
	if u := fctx.slot.otherCached(resp.Usage); u != resp.Usage {
		resp.Usage = u
		if nr, ok := resp.Native.(*nativeResponse); ok {
			nr.view.Usage = u
		}
	}

	if inner.name == "openai" && cr.Choices[0].StopReason == "error" {
		// OpenRouter's finish_reason for a provider that failed mid-answer
		// (NewTransport, when installed, fails such a call with the error
		// object sent along): returned with the partial answer, which the
		// budget bills.
		return resp, &middleware.ProviderError{Kind: httperr.Classify(httperr.EmbeddedStatus("", ""), "", ""),
			Provider: "openai", Model: req.Model, Message: `the answer finished with finish_reason "error"`}
	}
	if ps != nil {
		// langchaingo's openai backend ends a stream that stopped before
		// its finish_reason without an error: report the cut, unless
		// NewTransport, installed, read the stream to its [DONE] (servers
		// that name no finish_reason), or the stream ended on an entry
		// after its answer, the answer's usage reported (an entry the
		// backend took the null finish_reason of).
		if inner.name == "openai" && cr.Choices[0].StopReason == "" && !fctx.slot.sawDone() && !ps.endedAfterAnswer(resp.Usage) {
			// Returned with the partial answer, which the budget bills,
			// with what the other choices (n > 1) streamed.
			resp.OtherChoices = fctx.slot.otherChoices()
			return resp, &middleware.ProviderError{Kind: middleware.ErrStreamCut, Provider: "openai", Model: req.Model,
				Message: "the stream ended before a finish reason"}
		}
		if fctx.slot.unkeepable() {
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.Unkeepable = "the stream ended without [DONE] and without its usage"
			})
		}
		u := resp.Usage
		if err := req.Stream(ctx, middleware.Chunk{FinishReason: resp.FinishReason, Usage: &u}); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
