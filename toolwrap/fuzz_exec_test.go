package toolwrap_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// The kinds of tool a fuzzed turn calls.
const (
	kindInstant  = iota // returns at once
	kindSlow            // waits past its own 2s timeout, stops with its context
	kindStubborn        // sleeps past the 1s timeout, ignoring its context
	kindPanic           // panics
	kindError           // returns an error
	kindHuge            // returns a result over the artifact threshold
	kindSide            // a tool with side effects, returns at once
	kindUnknown         // a name the executor does not have
	kindGoexit          // calls runtime.Goexit (testing's FailNow)
	kindCount
)

var kindNames = [kindCount]string{"instant", "slow", "stubborn", "panics", "fails", "huge", "side", "nope", "quits"}

func hugeResult(args string) string {
	return strings.Repeat("a line of the huge result of call "+args+"\n", 100)
}

func fuzzTools() []toolwrap.Tool {
	sleep := func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return []toolwrap.Tool{
		{Name: "instant", Call: func(_ context.Context, a string) (string, error) { return "ok " + a, nil }},
		{Name: "slow", Meta: toolwrap.Meta{Timeout: 2 * time.Second}, Call: func(ctx context.Context, a string) (string, error) {
			if err := sleep(ctx, 10*time.Second); err != nil {
				return "", err
			}
			return "slow " + a, nil
		}},
		{Name: "stubborn", Call: func(_ context.Context, a string) (string, error) {
			time.Sleep(5 * time.Second)
			return "stubborn " + a, nil
		}},
		{Name: "panics", Call: func(_ context.Context, a string) (string, error) { panic("tool panic " + a) }},
		{Name: "fails", Call: func(_ context.Context, a string) (string, error) { return "", errors.New("boom " + a) }},
		{Name: "huge", Call: func(_ context.Context, a string) (string, error) { return hugeResult(a), nil }},
		{Name: "side", Meta: toolwrap.Meta{SideEffects: true}, Call: func(_ context.Context, a string) (string, error) { return "side " + a, nil }},
		{Name: "quits", Call: func(context.Context, string) (string, error) { runtime.Goexit(); return "", nil }},
	}
}

// Any set of calls of instant, slow, stubborn, panicking, Goexit-calling,
// failing, huge and side-effect tools and unknown names, run on any
// parallelism, with or without a cancellation or a run deadline, or under
// context.Background with no timeout, over one or two turns, with or
// without an observer that, told a call finished, calls runtime.Goexit or
// panics (and then calls Goexit when told of the recovered panic), as obs
// says call by call: Execute returns to its caller; results come in the
// calls' order, each the call's own result or its typed error (a call
// whose report the observer ended: its own result or ErrPanic); an
// offloaded result reads back whole; a call is not run only after a call
// given up on; every goroutine ends (synctest).
func FuzzExecuteAnyTurn(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, byte(4), []byte(nil))
	f.Add([]byte{2, 6, 0}, byte(0x13), []byte(nil))
	f.Add([]byte{5, 5, 5, 5}, byte(3), []byte(nil))
	f.Add([]byte{1, 1, 0, 6, 1}, byte(0x42), []byte(nil))
	f.Add([]byte{0, 0, 0}, byte(0x21), []byte(nil))
	f.Add([]byte{6, 2, 6, 5, 1, 3}, byte(0x94), []byte(nil))
	f.Add([]byte{4, 4, 1, 1, 0, 0}, byte(0x0c), []byte(nil))
	f.Add([]byte{8, 0, 8}, byte(0x62), []byte(nil))
	f.Add([]byte{8, 8, 6, 8}, byte(0x6b), []byte(nil))
	f.Add([]byte{0, 0, 0}, byte(0x03), []byte{0, 1, 2})
	f.Add([]byte{0, 3, 8, 0}, byte(0x21), []byte{3, 1})
	f.Add([]byte{2, 0, 6, 0}, byte(0x04), []byte{1, 0, 1, 3})
	f.Add([]byte{0, 1, 0, 0}, byte(0x92), []byte{2, 3})
	f.Add([]byte{5, 6, 0}, byte(0x64), []byte{1})
	f.Fuzz(func(t *testing.T, ops []byte, cfgb byte, obs []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		synctest.Test(t, func(t *testing.T) { checkAnyTurn(t, ops, cfgb, obs) })
	})
}

// What the fuzzed observer does when told that a call finished (obs).
const (
	obsNothing     = iota
	obsGoexit      // calls runtime.Goexit
	obsPanic       // panics
	obsPanicGoexit // panics, and calls Goexit when told of a recovered panic
	obsCount
)

// observeTurn returns ctx with the observer obs describes (none if obs is
// empty): obs[i%len(obs)] is what it does when told that call i finished.
func observeTurn(ctx context.Context, obs []byte, ids func(string) int) context.Context {
	if len(obs) == 0 {
		return ctx
	}
	act := func(id string) int {
		i := ids(id)
		if i < 0 {
			return obsNothing
		}
		return int(obs[i%len(obs)]) % obsCount
	}
	goexitOnPanic := false
	for _, b := range obs {
		goexitOnPanic = goexitOnPanic || int(b)%obsCount == obsPanicGoexit
	}
	return middleware.WithObserver(ctx, middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		switch e := e.(type) {
		case middleware.ToolFinished:
			switch act(e.CallID) {
			case obsGoexit:
				runtime.Goexit()
			case obsPanic, obsPanicGoexit:
				panic("observer broken at " + e.CallID)
			}
		case middleware.PanicRecovered:
			if goexitOnPanic {
				runtime.Goexit()
			}
		}
	}))
}

// executeOff runs ex.Execute on a goroutine of its own, failing the test
// if an observer ended it instead of it returning.
func executeOff(t *testing.T, ex *toolwrap.Executor, ctx context.Context, calls []middleware.ToolCall) ([]toolwrap.Result, error) {
	var res []toolwrap.Result
	var err error
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = ex.Execute(ctx, calls)
		returned = true
	}()
	<-done
	if !returned {
		t.Fatal("Execute's caller was ended by an observer's Goexit")
	}
	return res, err
}

func checkAnyTurn(t *testing.T, ops []byte, cfgb byte, obs []byte) {
	// Both cancellation bits (a cancellation at once makes the later one
	// moot): a context that never ends and no timeout.
	plain := cfgb&0x60 == 0x60
	cfg := toolwrap.Config{MaxParallel: int(cfgb % 5), Timeout: time.Second}
	if plain {
		cfg.Timeout = 0
	}
	if cfgb&0x80 != 0 {
		cfg.RunTimeout = 3 * time.Second
	}
	if cfgb&0x08 != 0 {
		// Idempotent and cached: identical calls share a flight.
		cfg.CacheTTL = time.Minute
		cfg.Meta = map[string]toolwrap.Meta{}
		for _, n := range []string{"instant", "slow", "stubborn", "panics", "fails", "huge", "quits"} {
			cfg.Meta[n] = toolwrap.Meta{Idempotent: true}
		}
	}
	arts := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), toolwrap.ArtifactConfig{ThresholdBytes: 1000}, nil)
	ex, err := toolwrap.New(fuzzTools(), cfg, toolwrap.WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch {
	case plain:
		ctx = context.Background()
	case cfgb&0x20 != 0:
		cancel()
	case cfgb&0x40 != 0:
		time.AfterFunc(1500*time.Millisecond, cancel)
	}
	ctx, _ = middleware.StartRun(ctx, "run-fuzz")
	// Call ids are call_<turn>_<i>.
	ctx = observeTurn(ctx, obs, func(id string) int {
		_, i, ok := strings.Cut(strings.TrimPrefix(id, "call_"), "_")
		if n, err := strconv.Atoi(i); ok && err == nil {
			return n
		}
		return -1
	})
	turns := 1
	if cfgb&0x10 != 0 {
		turns = 2
	}
	gaveUp := false // a stubborn call was given up on in an earlier turn
	for turn := range turns {
		calls := make([]middleware.ToolCall, len(ops))
		for i, b := range ops {
			// Calls of the same byte are identical.
			args := `{"turn":` + strconv.Itoa(turn) + `,"b":` + strconv.Itoa(int(b)) + `}`
			calls[i] = middleware.ToolCall{ID: "call_" + strconv.Itoa(turn) + "_" + strconv.Itoa(i), Name: kindNames[int(b)%kindCount], Arguments: args}
		}
		results, err := executeOff(t, ex, ctx, calls)
		if len(results) != len(calls) {
			t.Fatalf("%d results for %d calls", len(results), len(calls))
		}
		ended := err != nil // the turn's context ended: any call may have been cut
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil && cfg.RunTimeout == 0 {
			t.Fatalf("Execute: %v", err)
		}
		stubbornBefore := gaveUp
		// The first call the observer does something when told of.
		firstAct := len(calls)
		for i := range calls {
			if len(obs) > 0 && int(obs[i%len(obs)])%obsCount != obsNothing {
				firstAct = i
				break
			}
		}
		for i, r := range results {
			c := calls[i]
			kind := int(ops[i]) % kindCount
			if r.CallID != c.ID || r.Name != c.Name {
				t.Fatalf("result %d is of call %s %s, not %s %s", i, r.CallID, r.Name, c.ID, c.Name)
			}
			if r.Err != nil {
				var te *toolwrap.Error
				if !errors.As(r.Err, &te) || te.CallID != c.ID || te.Tool != c.Name {
					t.Fatalf("call %d (%s): error %v is not its own *toolwrap.Error", i, c.Name, r.Err)
				}
				if r.Content != r.Err.Error() {
					t.Fatalf("call %d (%s): observation %q is not its error %q", i, c.Name, r.Content, r.Err)
				}
			}
			if i >= firstAct && errors.Is(r.Err, toolwrap.ErrPanic) {
				// The observer told of the call ended its report, or one
				// told of an earlier call ended the goroutine that ran
				// the turn (the calls left fail as panics): a stubborn
				// tool may still run.
				stubbornBefore = stubbornBefore || kind == kindStubborn
				continue
			}
			if r.Err != nil && errors.Is(r.Err, toolwrap.ErrNotRun) {
				if !stubbornBefore {
					t.Fatalf("call %d (%s) not run, with no call given up on before it (ops %v)", i, c.Name, ops)
				}
				continue
			}
			if ended && r.Err != nil && (errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded) || errors.Is(r.Err, toolwrap.ErrTimeout)) {
				if kind == kindStubborn {
					stubbornBefore = true
				}
				continue
			}
			switch kind {
			case kindInstant, kindSide:
				if want := kindNames[kind] + " "; r.Err != nil || r.Content != strings.Replace(want, "instant ", "ok ", 1)+c.Arguments {
					t.Fatalf("call %d (%s): %q, %v", i, c.Name, r.Content, r.Err)
				}
			case kindStubborn:
				if plain && cfg.RunTimeout == 0 {
					// No timeout: it returns after its sleep.
					if r.Err != nil || r.Content != "stubborn "+c.Arguments {
						t.Fatalf("call %d (%s): %q, %v", i, c.Name, r.Content, r.Err)
					}
					break
				}
				if !errors.Is(r.Err, toolwrap.ErrTimeout) {
					t.Fatalf("call %d (%s): %q, %v; want a timeout", i, c.Name, r.Content, r.Err)
				}
				stubbornBefore = true
			case kindSlow:
				if !errors.Is(r.Err, toolwrap.ErrTimeout) {
					t.Fatalf("call %d (%s): %q, %v; want a timeout", i, c.Name, r.Content, r.Err)
				}
				if kind == kindStubborn {
					stubbornBefore = true
				}
			case kindPanic, kindGoexit:
				if !errors.Is(r.Err, toolwrap.ErrPanic) {
					t.Fatalf("call %d (%s): %q, %v; want a panic", i, c.Name, r.Content, r.Err)
				}
			case kindError:
				if r.Err == nil || !strings.Contains(r.Content, "boom "+c.Arguments) {
					t.Fatalf("call %d (%s): %q, %v; want its error", i, c.Name, r.Content, r.Err)
				}
			case kindHuge:
				if r.Err != nil || r.Artifact == "" || !strings.Contains(r.Content, r.Artifact) {
					t.Fatalf("call %d (%s): %.200q, %v; want an excerpt naming its artifact", i, c.Name, r.Content, r.Err)
				}
				text, err := arts.Get(ctx, r.Artifact)
				if err != nil || string(text.Bytes()) != hugeResult(c.Arguments) {
					t.Fatalf("call %d (%s): artifact %s: %v", i, c.Name, r.Artifact, err)
				}
			case kindUnknown:
				if !errors.Is(r.Err, toolwrap.ErrUnknownTool) {
					t.Fatalf("call %d (%s): %q, %v; want unknown tool", i, c.Name, r.Content, r.Err)
				}
			}
		}
		gaveUp = gaveUp || stubbornBefore
	}
	// A stubborn tool given up on still sleeps: it ends on its own, and
	// then nothing of the executor may still run (synctest.Test fails on
	// a goroutine left blocked).
	time.Sleep(time.Minute)
}
