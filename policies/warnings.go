package policies

import "fmt"

// defaultMaxOutput mirrors the budget layer's DefaultMaxOutput: the output
// reserved for a model that states no maximum when the policy sets no cap.
const defaultMaxOutput = 4096

// defaultMinOutput mirrors the budget layer's DefaultMinOutputTokens.
const defaultMinOutput = 256

// Warnings returns what is valid but will not behave as a reader of the
// policy may expect: for each model that may serve a call, a worst-case
// call (its largest output, plus the request's input cap) that costs more
// than the run or team budget — such calls are fitted to what the budget
// affords (budget.min_output_tokens) or refused. Each warning names the
// field of the budget it exceeds. A policy without problems may still have
// warnings; `tokenwise policy check` prints them.
func (p *Policy) Warnings() []Problem {
	c := &checker{p: p}
	c.models()
	c.budget()
	c.routing()
	c.fallback()
	c.probs = nil // problems are Validate's business
	if len(c.used) == 0 {
		return nil
	}
	b := p.Budget
	minOut := b.MinOutputTokens
	if minOut <= 0 {
		minOut = defaultMinOutput
	}
	type limit struct {
		path   string
		usd    USD
		tokens int64
	}
	var limits []limit
	if b.Run.MaxUSD > 0 || b.Run.MaxTokens > 0 {
		limits = append(limits, limit{"budget.run", b.Run.MaxUSD, b.Run.MaxTokens})
	}
	if b.Team.MaxUSD > 0 || b.Team.MaxTokens > 0 {
		limits = append(limits, limit{"budget.team", b.Team.MaxUSD, b.Team.MaxTokens})
	}
	seen := map[string]bool{}
	var out []Problem
	for _, u := range c.used {
		if seen[u.name] {
			continue
		}
		seen[u.name] = true
		spec, ok := p.Model(u.name)
		if !ok {
			continue
		}
		maxOut := b.Request.MaxOutputTokens
		if maxOut <= 0 || spec.MaxOutputTokens > 0 && spec.MaxOutputTokens < maxOut {
			maxOut = spec.MaxOutputTokens // (the budget injects no more than the model's)
		}
		if maxOut <= 0 {
			maxOut = defaultMaxOutput
		}
		in := b.Request.MaxInputTokens
		wc := TokenCounts{Input: in, Output: maxOut}
		if spec.AudioOutputPer1M > spec.OutputPer1M {
			wc.AudioOutput = maxOut // a spoken answer may be all audio
		}
		if spec.CacheWritePer1M > spec.InputPer1M {
			wc.CacheWrite = in // the prompt may all be written to the cache, as the budget reserves it
		}
		worst := spec.Cost(wc).Ceil()
		for _, l := range limits {
			var msg string
			switch {
			case l.usd > 0 && worst > l.usd:
				msg = fmt.Sprintf("a worst-case call on %s (%d output tokens%s) reserves %s, more than %s.max_usd %s",
					u.name, maxOut, inputNote(in), worst, l.path, l.usd)
			case l.tokens > 0 && in+maxOut > l.tokens:
				msg = fmt.Sprintf("a worst-case call on %s (%d output tokens%s) reserves %d tokens, more than %s.max_tokens %d",
					u.name, maxOut, inputNote(in), in+maxOut, l.path, l.tokens)
			default:
				continue
			}
			msg += fmt.Sprintf(": such calls get max_tokens lowered to what the budget affords, and are refused below budget.min_output_tokens (%d)", minOut)
			pr := Problem{Path: u.path, Msg: msg}
			if s := p.src; s != nil {
				pr.File = s.file
				if pos, ok := s.locate(u.path); ok {
					pr.Line, pr.Column = pos.line, pos.col
				}
			}
			out = append(out, pr)
		}
	}
	return out
}

func inputNote(in int64) string {
	if in <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d input tokens", in)
}
