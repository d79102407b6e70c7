package compact

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// minRounds is the least bound of the plan → fetch (excerpts, summaries)
// → plan rounds of one call. Every round but the last makes the work of
// one block at one strategy available, so a call needs at most a round
// per turn and strategy, and one more: the bound of a call is that or
// minRounds, whichever is larger, and is never reached by a well-behaved
// conversation, however long.
const minRounds = 256

// StageSummary is the stage recorded for the summary calls of the
// summarise strategy.
const StageSummary middleware.Stage = "context_summary"

// result describes what a compaction did to one request.
type result struct {
	after  int64
	blocks [3]int // blocks sent compacted, per strategy (offload, drop, summarise)
	turns  [3]int
}

var strategyNames = [3]Strategy{Offload, Drop, Summarise}

func strategyIndex(s Strategy) int {
	for i, n := range strategyNames {
		if n == s {
			return i
		}
	}
	return 0
}

func (r *result) describe() string {
	var parts []string
	for i, n := range r.blocks {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d blocks/%d turns", strategyNames[i], n, r.turns[i]))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *result) strategy() string {
	var parts []string
	for i, n := range r.blocks {
		if n > 0 {
			parts = append(parts, string(strategyNames[i]))
		}
	}
	return strings.Join(parts, "+")
}

// job is work a plan needs done outside the conversation's lock: tool
// results to offload, or a block to summarise.
type job struct {
	offload []offloadItem
	summary *summaryJob
}

type offloadItem struct {
	key  offloadKey
	tool string
}

type summaryKey [sha256.Size]byte

type summaryJob struct {
	key        summaryKey
	model      string
	transcript string
}

// compact returns the request to send instead of req.
func (c *Compactor) compact(ctx context.Context, next middleware.Handler, run *middleware.Run, st *runState,
	req *middleware.Request, before, ceiling int64) (*middleware.Request, result, error) {
	lay := layoutOf(req.Messages, c.cfg.KeepLastTurns)
	head := req.Messages[:lay.head]
	var cv *conv
	if st != nil {
		cv = st.conversation(head, before > ceiling)
	} else if before > ceiling {
		cv = &conv{run: newRunState(), head: head} // outside a run: this call only
	}
	if cv == nil {
		return req, result{after: before}, nil
	}
	smodel := c.cfg.SummaryModel
	if smodel == "" || !middleware.Serves(ctx, smodel) {
		smodel = req.Model
	}
	runID := ""
	if run != nil {
		runID = run.ID()
	}
	rounds := max(minRounds, (len(lay.starts)+1)*(len(c.strategies)+1))
	for range rounds {
		cv.mu.Lock()
		msgs, res, j, err := c.plan(cv, req, &lay, before, ceiling, smodel)
		if len(cv.blocks) > 0 && st != nil {
			st.used.Store(true)
		}
		cv.mu.Unlock()
		if err != nil {
			var tl *TooLargeError
			if errors.As(err, &tl) {
				tl.Original = before
			}
			return nil, res, err
		}
		if j == nil {
			if len(msgs) == len(req.Messages) && res.after == before && res.blocks == [3]int{} {
				return req, res, nil
			}
			out := req.Clone()
			out.Messages = msgs
			return out, res, nil
		}
		if err := c.do(ctx, next, runID, cv, j); err != nil {
			return nil, res, err
		}
	}
	return nil, result{}, &TooLargeError{Model: req.Model, Estimate: before, Original: before, Ceiling: ceiling,
		Tried: c.strategies, Err: errors.New("compaction did not converge")}
}

// plan applies the frozen blocks to req and freezes or upgrades blocks
// until the request fits. It runs under cv.mu and calls nothing outside
// the package; work it cannot do from memory comes back as a job.
func (c *Compactor) plan(cv *conv, req *middleware.Request, lay *layout, before, ceiling int64, smodel string) ([]middleware.Message, result, *job, error) {
	msgs := req.Messages
	// Keep the frozen blocks that still describe the start of this
	// conversation; the first that does not, and every later one, go.
	prev := lay.head
	for i, b := range cv.blocks {
		if b.start != prev || b.end > lay.tailStart || !lay.boundary(b.end) || !middleware.EqualMessages(msgs[b.start:b.end], b.orig) {
			clear(cv.blocks[i:])
			cv.blocks = cv.blocks[:i]
			break
		}
		prev = b.end
	}
	est := before
	for {
		var res result
		est = before
		for _, b := range cv.blocks {
			est -= c.saving(b, req.Model)
			k := strategyIndex(c.strategies[b.level])
			res.blocks[k]++
			res.turns[k] += b.turns
		}
		res.after = est
		if est <= ceiling {
			out := make([]middleware.Message, 0, len(msgs))
			out = append(out, msgs[:lay.head]...)
			for _, b := range cv.blocks {
				out = append(out, b.repl...)
			}
			out = append(out, msgs[cv.covered(lay.head):]...)
			return out, res, nil, nil
		}
		if len(c.strategies) == 0 {
			return nil, res, nil, c.tooLarge(req, cv, est, ceiling)
		}
		if covered := cv.covered(lay.head); covered < lay.tailStart {
			// Freeze the next block of old turns with the first strategy.
			t := lay.turnAt(covered)
			te := min(t+c.cfg.BlockSize, lay.tailTurn)
			b := &block{start: covered, end: lay.start(te), turns: te - t, level: -1, tokForm: -2}
			b.orig = cloneMessages(msgs[b.start:b.end])
			b.repl = b.orig
			if j := c.apply(cv, b, 0, smodel); j != nil {
				return nil, res, j, nil
			}
			cv.blocks = append(cv.blocks, b)
			continue
		}
		// Every old turn is in a block: move the oldest block of the
		// weakest level on to the next strategy.
		var up *block
		for _, b := range cv.blocks {
			if b.level+1 < len(c.strategies) && c.strategies[b.level] != Drop && (up == nil || b.level < up.level) {
				up = b
			}
		}
		if up == nil {
			return nil, res, nil, c.tooLarge(req, cv, est, ceiling)
		}
		if j := c.apply(cv, up, up.level+1, smodel); j != nil {
			return nil, res, j, nil
		}
	}
}

// saving returns the tokens b removes from a request to model: estimators
// count a request as a sum over its messages plus a constant, so a block's
// saving is the count of its original messages less that of its
// replacement, computed once per form and model.
func (c *Compactor) saving(b *block, model string) int64 {
	if b.tokModel != model || b.tokForm != b.level {
		base := c.o.est.Request(model, &middleware.Request{Model: model})
		b.origTok = c.o.est.Request(model, &middleware.Request{Model: model, Messages: b.orig}) - base
		b.replTok = c.o.est.Request(model, &middleware.Request{Model: model, Messages: b.repl}) - base
		b.tokModel, b.tokForm = model, b.level
	}
	return b.origTok - b.replTok
}

func (c *Compactor) tooLarge(req *middleware.Request, cv *conv, est, ceiling int64) error {
	var cause error
	for _, b := range cv.blocks {
		if b.failed != nil {
			cause = b.failed
		}
	}
	return &TooLargeError{Model: req.Model, Estimate: est, Ceiling: ceiling, Tried: c.strategies, Err: cause}
}

// apply moves b to strategy level, from its current form. It returns a job
// when that needs excerpts or a summary not known yet, leaving b as it was.
func (c *Compactor) apply(cv *conv, b *block, level int, smodel string) *job {
	switch c.strategies[level] {
	case Offload:
		var missing []offloadItem
		repl := make([]middleware.Message, len(b.repl))
		copy(repl, b.repl)
		for i := range repl {
			m := &repl[i]
			if m.Role != middleware.RoleTool {
				continue
			}
			text := m.Text()
			if len(text) <= c.cfg.OffloadOverBytes {
				continue
			}
			k := offloadKey{m.ToolCallID, text}
			e, ok := cv.run.excerpt(k)
			if !ok {
				missing = append(missing, offloadItem{key: k, tool: toolName(repl[:i], m.ToolCallID)})
				continue
			}
			*m = middleware.Message{Role: middleware.RoleTool, ToolCallID: m.ToolCallID, Name: m.Name, Content: e}
		}
		if len(missing) > 0 {
			return &job{offload: missing}
		}
		b.repl = repl
	case Drop:
		b.repl = append(systemMessages(b.repl), middleware.Message{Role: middleware.RoleUser,
			Content: fmt.Sprintf("[tokenwise: %d earlier turns (%d messages) were dropped here to fit the context budget]",
				b.turns, b.end-b.start)})
	case Summarise:
		sj := c.summaryJob(b, smodel)
		if err, failed := cv.failed[sj.key]; failed {
			b.failed = err // the block keeps its form at this level; a later strategy may still shrink it
		} else {
			s, ok := c.summaries.Get(sj.key)
			if !ok {
				return &job{summary: sj}
			}
			b.repl = append(systemMessages(b.repl), middleware.Message{Role: middleware.RoleUser,
				Content: fmt.Sprintf("[tokenwise: summary of %d earlier turns]\n%s", b.turns, s)})
		}
	}
	b.level = level
	return nil
}

func toolName(before []middleware.Message, id string) string {
	for i := len(before) - 1; i >= 0; i-- {
		for _, tc := range before[i].ToolCalls {
			if tc.ID == id {
				return tc.Name
			}
		}
	}
	return ""
}

func systemMessages(ms []middleware.Message) []middleware.Message {
	var out []middleware.Message
	for _, m := range ms {
		if instructions(m.Role) {
			out = append(out, m)
		}
	}
	return out
}

// do runs a job outside the conversation's lock and records its results.
func (c *Compactor) do(ctx context.Context, next middleware.Handler, run string, cv *conv, j *job) error {
	for _, it := range j.offload {
		e, err := c.o.offloader.Offload(ctx, run, it.tool, it.key.content)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			middleware.Emit(ctx, middleware.StoreFailed{Store: "artifacts", Op: "offload", Err: err})
			e = it.key.content // keep the result; the block stays as it is
		}
		cv.run.setExcerpt(it.key, e)
	}
	if sj := j.summary; sj != nil {
		_, err, _ := c.flight.Do(string(sj.key[:]), func() (any, error) {
			if s, ok := c.summaries.Get(sj.key); ok {
				return s, nil
			}
			s, err := c.summarise(ctx, next, sj)
			if err == nil {
				c.summaries.Add(sj.key, s)
			}
			return s, err
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Not retried in this conversation: the block stays as it is at
			// this level, and a later strategy (drop) may still shrink it.
			cv.mu.Lock()
			if cv.failed == nil {
				cv.failed = map[summaryKey]error{}
			}
			cv.failed[sj.key] = fmt.Errorf("%w: %w", ErrSummary, err)
			cv.mu.Unlock()
		}
	}
	return nil
}

const summaryPrompt = "You compress the history of an AI agent's conversation so that the agent can continue its task. " +
	"Summarise the turns below in at most %d words. Keep every fact, number, identifier, file path, artifact id, " +
	"tool result that matters and decision the agent may need later; drop pleasantries. Answer with the summary only."

func (c *Compactor) summaryJob(b *block, model string) *summaryJob {
	var t strings.Builder
	for i := range b.repl {
		m := &b.repl[i]
		if instructions(m.Role) {
			continue // kept as it is beside the summary
		}
		t.WriteString(string(m.Role))
		if m.Role == middleware.RoleTool {
			fmt.Fprintf(&t, " (%s)", toolName(b.repl[:i], m.ToolCallID))
		}
		t.WriteString(": ")
		t.WriteString(m.Text())
		for _, tc := range m.ToolCalls {
			fmt.Fprintf(&t, "\n  calls %s(%s)", tc.Name, tc.Arguments)
		}
		t.WriteByte('\n')
	}
	sj := &summaryJob{model: model, transcript: t.String()}
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%d\x00", model, c.cfg.SummaryMaxTokens)
	h.Write([]byte(sj.transcript))
	h.Sum(sj.key[:0])
	return sj
}

// summarise makes the summary call through the chain below the compactor
// (or the configured summariser), recorded in the run as its own call.
func (c *Compactor) summarise(ctx context.Context, next middleware.Handler, sj *summaryJob) (string, error) {
	h := c.o.summariser
	if h == nil {
		h = middleware.Then(next, instrument.New(c.o.pricer, nil))
	}
	zero := 0.0
	req := &middleware.Request{
		Model: sj.model,
		Messages: []middleware.Message{
			{Role: middleware.RoleSystem, Content: fmt.Sprintf(summaryPrompt, c.cfg.SummaryMaxTokens*3/4)},
			{Role: middleware.RoleUser, Content: sj.transcript},
		},
		MaxTokens:   c.cfg.SummaryMaxTokens,
		Temperature: &zero,
	}
	resp, err := h.Handle(middleware.WithStage(ctx, StageSummary), req)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(resp.Message.Text())
	if s == "" {
		return "", errors.New("empty summary")
	}
	return s, nil
}
