package observe_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

func provider() middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			FinishReason: "stop", Usage: middleware.Usage{InputTokens: 100, OutputTokens: 10}}, nil
	})
}

func TestSlogLogsFinishedCall(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	h := middleware.Then(provider(), llmwrap.MustBuild(p, llmwrap.WithObserver(observe.NewSlog(slog.New(slog.NewTextHandler(&buf, nil))))))
	ctx, _ := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r1")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="tokenwise: call.finished"`, "team=devops", "model=gpt-4o", "input_tokens=100", "output_tokens=10", "usd=$0.00035"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestRecorderRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rec := observe.NewRecorder(&buf)
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	h := middleware.Then(provider(), rec.Middleware(), llmwrap.MustBuild(p))
	ctx, _ := middleware.StartRun(context.Background(), "r1")
	temp := 0.0
	req := &middleware.Request{Model: "gpt-4o", Temperature: &temp, Messages: []middleware.Message{{Role: "user", Content: "hi"}},
		Tools: []middleware.Tool{{Name: "check_disk", Parameters: []byte(`{"type":"object"}`)}}}
	if _, err := h.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := observe.ReadTrace(&buf)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %d", err, len(recs))
	}
	r := recs[0]
	if r.Run != "r1" || r.Seq != 1 || r.Model != "gpt-4o" || r.CostPico != 350_000_000 || r.Response.Usage.InputTokens != 100 ||
		*r.Request.Temperature != 0 || r.Request.Tools[0].Name != "check_disk" || r.Request.Request().Messages[0].Content != "hi" {
		t.Errorf("record = %+v", r)
	}
}

// BenchmarkObserverOverhead measures the chain with no observer, and with
// the slog observer (info level, discarding handler) attached; with the
// OTel observer: e2e's BenchmarkObserverOverheadOTel. Target: under 2 µs
// more per call.
func BenchmarkObserverOverhead(b *testing.B) {
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "hi"}}}
	bench := func(b *testing.B, opts ...llmwrap.Option) {
		h := middleware.Then(provider(), llmwrap.MustBuild(p, opts...))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Handle(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("none", func(b *testing.B) { bench(b) })
	b.Run("slog", func(b *testing.B) {
		bench(b, llmwrap.WithObserver(observe.NewSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	})
	b.Run("slog-warn-level", func(b *testing.B) {
		bench(b, llmwrap.WithObserver(observe.NewSlog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))))
	})
}

// TestSlogLogsARecoveredPanicWithItsStack: a provider that panics under a
// built chain fails the call, and the log has the panic and its stack at
// error level.
func TestSlogLogsARecoveredPanicWithItsStack(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p, _ := policies.LoadBytes([]byte("version: 1\n"), "t.yaml")
	broken := middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		panic("provider broken")
	})
	h := middleware.Then(broken, llmwrap.MustBuild(p, llmwrap.WithObserver(observe.NewSlog(slog.New(slog.NewTextHandler(&buf, nil))))))
	_, err := h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "hi"}}})
	if !errors.Is(err, middleware.ErrPanic) {
		t.Fatalf("err %v, want middleware.ErrPanic", err)
	}
	for _, want := range []string{"level=ERROR", `msg="tokenwise: panic.recovered"`, `panic="provider broken"`, "observe_test.go"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}
