package observe

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Slog is a middleware.Observer that logs every tokenwise event with a
// slog.Logger. It checks the logger's level before building a record, so a
// disabled level costs one Enabled call. It is safe for concurrent use.
type Slog struct {
	l *slog.Logger
}

// NewSlog returns an observer logging to l (slog.Default() when nil).
func NewSlog(l *slog.Logger) *Slog {
	if l == nil {
		l = slog.Default()
	}
	return &Slog{l: l}
}

var _ middleware.Observer = (*Slog)(nil)

// Level returns the level an event is logged at: warn for retries,
// fallbacks, breaker changes, budget warnings and refusals, rate-limit
// refusals, store failures, unknown teams and rejected policy reloads; error
// for recovered panics; info for finished calls and policy reloads
// (warn when the call failed); debug for the rest.
func Level(e middleware.Event) slog.Level {
	switch e := e.(type) {
	case middleware.CallFinished:
		if e.Err != nil {
			return slog.LevelWarn
		}
		return slog.LevelInfo
	case middleware.Retrying, middleware.FellBack, middleware.BreakerChanged, middleware.BudgetWarning, middleware.BudgetPace,
		middleware.BudgetExceeded, middleware.StoreFailed, middleware.UnknownTeam:
		return slog.LevelWarn
	case middleware.PolicyChanged:
		if e.Err != nil {
			return slog.LevelError
		}
		return slog.LevelInfo
	case middleware.ToolFinished:
		if e.Err != nil {
			return slog.LevelWarn
		}
	case middleware.RateLimited:
		if e.Action != "admitted" {
			return slog.LevelWarn
		}
	case middleware.PanicRecovered:
		return slog.LevelError
	}
	return slog.LevelDebug
}

// Observe logs e. It builds the record itself rather than going through
// [slog.Logger.LogAttrs]: that skips capturing a caller PC (which would
// always point into this file) and keeps the attributes of a finished call
// in an array on the stack. Empty fields of a finished call (team, run,
// rule, zero cached tokens, a single attempt) are left out.
func (s *Slog) Observe(ctx context.Context, e middleware.Event) {
	lvl := Level(e)
	if !s.l.Enabled(ctx, lvl) {
		return
	}
	switch e := e.(type) {
	case middleware.CallStarted:
		s.log(ctx, lvl, "tokenwise: call.started", slog.String("run", e.Run), slog.Int("seq", e.Seq), slog.String("team", e.Team),
			slog.String("stage", string(e.Stage)), slog.String("model", e.Model), slog.Bool("stream", e.Stream))
	case middleware.CallFinished:
		s.callFinished(ctx, lvl, e)
	case middleware.RouteDecided:
		s.log(ctx, lvl, "tokenwise: route.decided", slog.String("from", e.From), slog.String("to", e.To), slog.String("rule", e.Rule), slog.String("stage", string(e.Stage)))
	case middleware.Retrying:
		s.log(ctx, lvl, "tokenwise: retry", slog.String("model", e.Model), slog.Int("attempt", e.Attempt), slog.Duration("wait", e.Wait), slog.Any("error", e.Err))
	case middleware.FellBack:
		s.log(ctx, lvl, "tokenwise: fallback", slog.String("from", e.From), slog.String("to", e.To), slog.Any("error", e.Err))
	case middleware.BreakerChanged:
		s.log(ctx, lvl, "tokenwise: breaker.changed", slog.String("model", e.Model), slog.String("from", e.From), slog.String("to", e.To))
	case middleware.BudgetWarning:
		s.log(ctx, lvl, "tokenwise: budget.warning", slog.String("scope", e.Scope), slog.String("unit", e.Unit), slog.Float64("fraction", e.Fraction),
			slog.Int64("limit", e.Limit), slog.Int64("used", e.Used))
	case middleware.BudgetPace:
		s.log(ctx, lvl, "tokenwise: budget.pace", slog.String("scope", e.Scope), slog.String("unit", e.Unit), slog.Int64("limit", e.Limit),
			slog.Int64("used", e.Used), slog.Int64("projected", e.Projected), slog.Time("runs_out_at", e.RunsOutAt), slog.Time("window_end", e.WindowEnd))
	case middleware.BudgetExceeded:
		s.log(ctx, lvl, "tokenwise: budget.exceeded", slog.String("scope", e.Scope), slog.String("unit", e.Unit), slog.Int64("limit", e.Limit),
			slog.Int64("used", e.Used), slog.Int64("reserved", e.Reserved), slog.Int64("need", e.Need), slog.String("action", e.Action))
	case middleware.CacheLookup:
		s.log(ctx, lvl, "tokenwise: cache.lookup", slog.String("status", string(e.Status)), slog.String("reason", e.Reason), slog.String("model", e.Model),
			slog.Int64("saved_tokens", e.Saved.Total()), slog.String("saved_usd", usd(e.SavedPico)))
	case middleware.StoreFailed:
		s.log(ctx, lvl, "tokenwise: store.failed", slog.String("store", e.Store), slog.String("op", e.Op), slog.Any("error", e.Err))
	case middleware.ToolFinished:
		var buf [6]slog.Attr
		a := append(buf[:0], slog.String("tool", e.Name), slog.String("call_id", e.CallID), slog.Duration("duration", e.Duration),
			slog.Bool("cached", e.Cached), slog.Int("bytes", e.Bytes))
		if e.Err != nil {
			a = append(a, slog.Any("error", e.Err))
		}
		s.log(ctx, lvl, "tokenwise: tool.finished", a...)
	case middleware.ArtifactStored:
		s.log(ctx, lvl, "tokenwise: artifact.stored", slog.String("id", e.ID), slog.String("tool", e.Tool), slog.Int("bytes", e.Bytes), slog.Int64("saved_tokens", e.SavedTokens))
	case middleware.ContextCompacted:
		s.log(ctx, lvl, "tokenwise: context.compacted", slog.String("strategy", e.Strategy), slog.Int64("before_tokens", e.BeforeTokens), slog.Int64("after_tokens", e.AfterTokens))
	case middleware.RateLimited:
		s.log(ctx, lvl, "tokenwise: ratelimit", slog.String("model", e.Model), slog.String("team", e.Team), slog.String("action", e.Action),
			slog.String("limit", e.Limit), slog.Duration("wait", e.Wait))
	case middleware.PolicyChanged:
		var buf [3]slog.Attr
		a := append(buf[:0], slog.String("policy", e.Name), slog.String("path", e.Path))
		if e.Err != nil {
			a = append(a, slog.Any("error", e.Err))
		}
		s.log(ctx, lvl, "tokenwise: policy.changed", a...)
	case middleware.PanicRecovered:
		s.log(ctx, lvl, "tokenwise: panic.recovered", slog.String("where", e.Where), slog.String("panic", fmt.Sprint(e.Value)),
			slog.String("stack", string(e.Stack)))
	default:
		s.log(ctx, lvl, "tokenwise: "+e.Kind(), slog.Any("event", e))
	}
}

func (s *Slog) callFinished(ctx context.Context, lvl slog.Level, e middleware.CallFinished) {
	f := &e.Facts
	var buf [20]slog.Attr
	a := buf[:0]
	if f.Run != "" {
		a = append(a, slog.String("run", f.Run), slog.Int("seq", f.Seq))
	}
	if f.Team != "" {
		a = append(a, slog.String("team", f.Team))
	}
	a = append(a, slog.String("stage", string(f.Stage)), slog.String("requested_model", f.RequestedModel), slog.String("model", f.Model),
		slog.Int64("input_tokens", e.Usage.InputTokens), slog.Int64("output_tokens", e.Usage.OutputTokens))
	if e.Usage.CachedInputTokens != 0 {
		a = append(a, slog.Int64("cached_input_tokens", e.Usage.CachedInputTokens))
	}
	a = append(a, slog.String("usd", usd(f.CostPico)), slog.Duration("latency", e.Latency), slog.String("cache", string(f.Cache)))
	if f.Rule != "" {
		a = append(a, slog.String("rule", f.Rule))
	}
	if len(f.Attempts) > 1 {
		a = append(a, slog.Int("attempts", len(f.Attempts)))
	}
	if f.UsageEstimated() {
		a = append(a, slog.Bool("usage_estimated", true))
	}
	if f.SavedPico > 0 {
		a = append(a, slog.String("saved_usd", usd(f.SavedPico)))
	}
	if f.RoutingSavedPico != 0 {
		a = append(a, slog.String("routing_saved_usd", usd(f.RoutingSavedPico)))
	}
	if f.Operation != "" {
		a = append(a, slog.String("operation", f.Operation))
	}
	if e.Err != nil {
		a = append(a, slog.Any("error", e.Err))
	}
	s.log(ctx, lvl, "tokenwise: call.finished", a...)
}

// log hands one record to the logger's handler.
func (s *Slog) log(ctx context.Context, lvl slog.Level, msg string, attrs ...slog.Attr) {
	r := slog.NewRecord(time.Now(), lvl, msg, 0)
	r.AddAttrs(attrs...)
	_ = s.l.Handler().Handle(ctx, r)
}

// usd formats exact pico-USD like middleware.FormatPico ("$0.0000564").
func usd(pico int64) string { return middleware.FormatPico(pico) }
