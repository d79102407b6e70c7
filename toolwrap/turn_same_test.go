package toolwrap_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// A turn under a context that never ends (its calls run on goroutines of
// the turn's own, the tools called on them) gives exactly what the same
// turn gives under a context that can end but does not (each tool on a
// goroutine of its own): the same results, observations, error kinds,
// artifacts and run records, in call order, over random turns of
// instant, failing, panicking, Goexit-calling, side-effect, timed,
// stubborn (given up on while they run) and unknown tools on any
// parallelism.
func TestExecutePlainContextSameAsCancellable(t *testing.T) {
	t.Parallel()
	quits := func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }
	tools := []toolwrap.Tool{
		{Name: "instant", Call: func(_ context.Context, a string) (string, error) { return "ok " + a, nil }},
		{Name: "fails", Call: func(_ context.Context, a string) (string, error) { return "", errors.New("boom " + a) }},
		{Name: "panics", Call: func(_ context.Context, a string) (string, error) { panic("tool panic " + a) }},
		{Name: "quits", Call: quits},
		{Name: "side", Meta: toolwrap.Meta{SideEffects: true}, Call: func(_ context.Context, a string) (string, error) { return "side " + a, nil }},
		{Name: "side_quits", Meta: toolwrap.Meta{SideEffects: true}, Call: quits},
		{Name: "timed", Meta: toolwrap.Meta{Timeout: time.Second}, Call: func(_ context.Context, a string) (string, error) { return "timed " + a, nil }},
		{Name: "huge", Call: func(_ context.Context, a string) (string, error) { return hugeResult(a), nil }},
		// Ignores its context past its timeout, twice over: given up on
		// while it runs, so later calls with side effects are not run.
		{Name: "stubborn", Meta: toolwrap.Meta{Timeout: time.Second}, Call: func(_ context.Context, a string) (string, error) {
			time.Sleep(3 * time.Second)
			return "late " + a, nil
		}},
	}
	names := []string{"instant", "fails", "panics", "quits", "side", "side_quits", "timed", "huge", "nope", "stubborn"}
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 1000 {
		calls := make([]middleware.ToolCall, 1+rng.IntN(12))
		for i := range calls {
			calls[i] = middleware.ToolCall{ID: "c" + strconv.Itoa(i), Name: names[rng.IntN(len(names))], Arguments: `{"i":` + strconv.Itoa(i) + `}`}
		}
		cfg := toolwrap.Config{MaxParallel: rng.IntN(5)}
		if rng.IntN(3) == 0 {
			cfg.Timeout = time.Second
		}
		run := func(cancellable bool) ([]toolwrap.Result, []middleware.ToolRecord) {
			var res []toolwrap.Result
			var recs []middleware.ToolRecord
			synctest.Test(t, func(t *testing.T) {
				arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{ThresholdBytes: 1000}, nil)
				ex, err := toolwrap.New(tools, cfg, toolwrap.WithArtifacts(arts))
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if cancellable {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				ctx, r := middleware.StartRun(ctx, "same")
				res, err = ex.Execute(ctx, calls)
				if err != nil {
					t.Fatalf("iteration %d: %v", iter, err)
				}
				recs = r.Tools()
				time.Sleep(time.Minute) // the stubborn tools end
			})
			return res, recs
		}
		plain, plainRecs := run(false)
		other, otherRecs := run(true)
		if len(plain) != len(calls) || len(other) != len(calls) {
			t.Fatalf("iteration %d: %d and %d results for %d calls", iter, len(plain), len(other), len(calls))
		}
		for i := range calls {
			p, o := plain[i], other[i]
			// Artifact ids are random: the same but for them.
			if (p.Artifact == "") != (o.Artifact == "") || strings.ReplaceAll(p.Content, p.Artifact, "ID") != strings.ReplaceAll(o.Content, o.Artifact, "ID") {
				t.Fatalf("iteration %d, call %d %s: plain %.300q (%s), cancellable %.300q (%s)", iter, i, calls[i].Name, p.Content, p.Artifact, o.Content, o.Artifact)
			}
			// The excerpt's estimated tokens count the id too.
			if (p.SavedTokens > 0) != (o.SavedTokens > 0) {
				t.Fatalf("iteration %d, call %d: saved tokens %d and %d", iter, i, p.SavedTokens, o.SavedTokens)
			}
			p.Content, o.Content, p.Artifact, o.Artifact, p.SavedTokens, o.SavedTokens = "", "", "", "", 0, 0
			if p.CallID != calls[i].ID || p.CallID != o.CallID || p.Name != o.Name || p.Content != o.Content || p.Cached != o.Cached || p.Bytes != o.Bytes || p.SavedTokens != o.SavedTokens ||
				(p.Err == nil) != (o.Err == nil) || (p.Err != nil && p.Err.Error() != o.Err.Error()) {
				t.Fatalf("iteration %d (%+v), call %d %s: plain %+v, cancellable %+v", iter, cfg, i, calls[i].Name, p, o)
			}
			for _, kind := range []error{toolwrap.ErrPanic, toolwrap.ErrUnknownTool, toolwrap.ErrNotRun, toolwrap.ErrTimeout} {
				if errors.Is(p.Err, kind) != errors.Is(o.Err, kind) {
					t.Fatalf("iteration %d, call %d: plain %v, cancellable %v differ on %v", iter, i, p.Err, o.Err, kind)
				}
			}
			// (A call not run beside a stubborn one given up on is not
			// its tool's.)
			if n := calls[i].Name; (n == "quits" || n == "side_quits" || n == "panics") && !errors.Is(p.Err, toolwrap.ErrPanic) && !errors.Is(p.Err, toolwrap.ErrNotRun) {
				t.Fatalf("iteration %d, call %d %s: %v, want a panic", iter, i, n, p.Err)
			}
		}
		key := func(r middleware.ToolRecord) string {
			e := ""
			if r.Err != nil {
				e = r.Err.Error()
			}
			return r.CallID + "|" + r.Name + "|" + e + "|" + strconv.FormatBool(r.Artifact != "") + "|" + strconv.FormatBool(r.SavedTokens > 0)
		}
		pk, ok := make([]string, len(plainRecs)), make([]string, len(otherRecs))
		for i := range plainRecs {
			pk[i] = key(plainRecs[i])
		}
		for i := range otherRecs {
			ok[i] = key(otherRecs[i])
		}
		// Parallel calls record in the order they end.
		slices.Sort(pk)
		slices.Sort(ok)
		if len(pk) != len(calls) || !slices.Equal(pk, ok) {
			t.Fatalf("iteration %d (%+v): run records differ:\ncalls %+v\nplain       %q\ncancellable %q", iter, cfg, calls, pk, ok)
		}
	}
}
