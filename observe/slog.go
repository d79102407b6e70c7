package observe

import (
	"context"
	"log/slog"

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
// fallbacks, breaker changes, budget warnings and refusals, store failures
// and rejected policy reloads; info for finished calls and policy reloads
// (warn when the call failed); debug for the rest.
func Level(e middleware.Event) slog.Level {
	switch e := e.(type) {
	case middleware.CallFinished:
		if e.Err != nil {
			return slog.LevelWarn
		}
		return slog.LevelInfo
	case middleware.Retrying, middleware.FellBack, middleware.BreakerChanged, middleware.BudgetWarning,
		middleware.BudgetExceeded, middleware.StoreFailed:
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
	}
	return slog.LevelDebug
}

// Observe logs e.
func (s *Slog) Observe(ctx context.Context, e middleware.Event) {
	lvl := Level(e)
	if !s.l.Enabled(ctx, lvl) {
		return
	}
	msg := "tokenwise: " + e.Kind()
	switch e := e.(type) {
	case middleware.CallStarted:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("run", e.Run), slog.Int("seq", e.Seq), slog.String("team", e.Team),
			slog.String("stage", string(e.Stage)), slog.String("model", e.Model), slog.Bool("stream", e.Stream))
	case middleware.CallFinished:
		f := e.Facts
		attrs := []slog.Attr{slog.String("run", f.Run), slog.Int("seq", f.Seq), slog.String("team", f.Team),
			slog.String("stage", string(f.Stage)), slog.String("requested_model", f.RequestedModel), slog.String("model", f.Model),
			slog.Int64("input_tokens", e.Usage.InputTokens), slog.Int64("output_tokens", e.Usage.OutputTokens),
			slog.Int64("cached_input_tokens", e.Usage.CachedInputTokens), slog.String("usd", middleware.FormatUSD(f.CostMicros)),
			slog.Duration("latency", e.Latency), slog.String("cache", string(f.Cache)), slog.String("rule", f.Rule),
			slog.Int("attempts", len(f.Attempts))}
		if f.SavedMicros > 0 {
			attrs = append(attrs, slog.String("saved_usd", middleware.FormatUSD(f.SavedMicros)))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.Any("error", e.Err))
		}
		s.l.LogAttrs(ctx, lvl, msg, attrs...)
	case middleware.RouteDecided:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("from", e.From), slog.String("to", e.To), slog.String("rule", e.Rule), slog.String("stage", string(e.Stage)))
	case middleware.Retrying:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("model", e.Model), slog.Int("attempt", e.Attempt), slog.Duration("wait", e.Wait), slog.Any("error", e.Err))
	case middleware.FellBack:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("from", e.From), slog.String("to", e.To), slog.Any("error", e.Err))
	case middleware.BreakerChanged:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("model", e.Model), slog.String("from", e.From), slog.String("to", e.To))
	case middleware.BudgetWarning:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("scope", e.Scope), slog.String("unit", e.Unit), slog.Float64("fraction", e.Fraction),
			slog.Int64("limit", e.Limit), slog.Int64("used", e.Used))
	case middleware.BudgetExceeded:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("scope", e.Scope), slog.String("unit", e.Unit), slog.Int64("limit", e.Limit),
			slog.Int64("used", e.Used), slog.Int64("reserved", e.Reserved), slog.Int64("need", e.Need), slog.String("action", e.Action))
	case middleware.CacheLookup:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("status", string(e.Status)), slog.String("model", e.Model),
			slog.Int64("saved_tokens", e.Saved.Total()), slog.String("saved_usd", middleware.FormatUSD(e.SavedMicros)))
	case middleware.StoreFailed:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("store", e.Store), slog.String("op", e.Op), slog.Any("error", e.Err))
	case middleware.ToolFinished:
		attrs := []slog.Attr{slog.String("tool", e.Name), slog.String("call_id", e.CallID), slog.Duration("duration", e.Duration),
			slog.Bool("cached", e.Cached), slog.Int("bytes", e.Bytes)}
		if e.Err != nil {
			attrs = append(attrs, slog.Any("error", e.Err))
		}
		s.l.LogAttrs(ctx, lvl, msg, attrs...)
	case middleware.ArtifactStored:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("id", e.ID), slog.String("tool", e.Tool), slog.Int("bytes", e.Bytes), slog.Int64("saved_tokens", e.SavedTokens))
	case middleware.ContextCompacted:
		s.l.LogAttrs(ctx, lvl, msg, slog.String("strategy", e.Strategy), slog.Int64("before_tokens", e.BeforeTokens), slog.Int64("after_tokens", e.AfterTokens))
	case middleware.PolicyChanged:
		attrs := []slog.Attr{slog.String("policy", e.Name), slog.String("path", e.Path)}
		if e.Err != nil {
			attrs = append(attrs, slog.Any("error", e.Err))
		}
		s.l.LogAttrs(ctx, lvl, msg, attrs...)
	default:
		s.l.LogAttrs(ctx, lvl, msg, slog.Any("event", e))
	}
}
