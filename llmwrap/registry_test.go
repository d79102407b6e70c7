package llmwrap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/policies"
)

const regDefault = `version: 1
limits: {max_calls: 10}
cache: {enabled: true, ttl: 1h, deterministic_only: false}
`

func teamFile(maxCalls int) string {
	return fmt.Sprintf("version: 1\nextends: default.yaml\nlimits: {max_calls: %d}\n", maxCalls)
}

// writeAtomic replaces a file the way editors do: write a temp file, rename.
func writeAtomic(t *testing.T, path, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventLog records the events of the registry's chains; safe for
// concurrent use.
type eventLog struct{ middlewaretest.Recorder }

func (l *eventLog) policyErrors() []middleware.PolicyChanged {
	var out []middleware.PolicyChanged
	for _, pc := range middlewaretest.Of[middleware.PolicyChanged](&l.Recorder) {
		if pc.Err != nil {
			out = append(out, pc)
		}
	}
	return out
}

// Editing a team file on disk switches new calls to the new policy once
// the watcher has reloaded it; a broken edit leaves the old one in force, is
// reported as an event and in the log; the response cache keeps its
// contents across reloads. Calls go through the real go-openai client.
func TestRegistryHotReload(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	writeAtomic(t, filepath.Join(dir, "default.yaml"), regDefault)
	devops := filepath.Join(dir, "devops.yaml")
	writeAtomic(t, devops, teamFile(1))

	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	preg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(logger), policies.WithDebounce(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	events := &eventLog{}
	reg, err := llmwrap.NewRegistry(preg, llmwrap.WithObserver(events), llmwrap.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// Subscribed after the chain registry: subscribers run in order, so a
	// change seen here has been handled (and reported) by reg.
	changes := make(chan policies.Change, 16)
	defer preg.Subscribe(func(c policies.Change) { changes <- c })()

	// The watch is in place when StartWatch returns: no edit below can be
	// missed, and nothing waits on the clock.
	ctx, stop := context.WithCancel(context.Background())
	wait, err := preg.StartWatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop()
		if err := wait(); err != nil {
			t.Error(err)
		}
	}()

	srv := openaitest.New()
	defer srv.Close()
	srv.On().Reply(openaitest.Text("ok"))
	cfg := goopenai.DefaultConfig("test")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
	client := goopenai.NewClientWithConfig(cfg)
	ask := func(ctx context.Context, text string) error {
		_, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: text}}})
		return err
	}
	// callsAllowed makes calls in a fresh devops run until the guard refuses.
	callsAllowed := func() int {
		rctx, _ := middleware.StartRun(middleware.WithTeam(context.Background(), "devops"), "r")
		for i := 1; i <= 20; i++ {
			if err := ask(rctx, fmt.Sprintf("call %d %d", i, time.Now().UnixNano())); err != nil {
				if !errors.Is(err, guard.ErrMaxCalls) {
					t.Fatalf("call %d: %v", i, err)
				}
				return i - 1
			}
		}
		return 20
	}
	// waitChange blocks until a reload reports the wanted change; the
	// test's own deadline is the only bound.
	waitChange := func(want func(policies.Change) bool) policies.Change {
		t.Helper()
		for {
			select {
			case c := <-changes:
				if want(c) {
					return c
				}
			case <-t.Context().Done():
				t.Fatal("the test ended before the reload")
			}
		}
	}

	if got := callsAllowed(); got != 1 {
		t.Fatalf("devops allows %d calls, want 1", got)
	}
	// A team without a file gets the default policy.
	if err := ask(middleware.WithTeam(context.Background(), "nobody"), "hello cache"); err != nil {
		t.Fatal(err)
	}
	served := srv.Count()

	writeAtomic(t, devops, teamFile(3))
	waitChange(func(c policies.Change) bool { return len(c.Updated) == 1 && c.Updated[0] == "devops" })
	if got := callsAllowed(); got != 3 {
		t.Fatalf("after the edit devops allows %d calls, want 3", got)
	}

	// A broken edit: the last good policy stays, the problem is reported.
	writeAtomic(t, devops, "version: 1\nextends: default.yaml\nlimits: {max_calls: lots}\n")
	c := waitChange(func(c policies.Change) bool { return c.Failed["devops"] != nil })
	if !strings.Contains(c.Failed["devops"].Error(), "devops.yaml:3:") || !strings.Contains(c.Failed["devops"].Error(), "limits.max_calls") {
		t.Errorf("failure does not name file:line and field: %v", c.Failed["devops"])
	}
	if got := callsAllowed(); got != 3 {
		t.Fatalf("after a broken edit devops allows %d calls, want the last good 3", got)
	}
	if errs := events.policyErrors(); len(errs) == 0 || errs[0].Name != "devops" {
		t.Errorf("no PolicyChanged event with the error: %+v", errs)
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "last good policy stays in force") {
		t.Errorf("log lacks the warning:\n%s", logs.String())
	}
	logMu.Unlock()

	// The cache survived both reloads: the same question is a hit.
	before := srv.Count()
	if err := ask(middleware.WithTeam(context.Background(), "nobody"), "hello cache"); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != before {
		t.Errorf("cache lost its contents over the reloads (served %d before, %d now; first ask at %d)", before, srv.Count(), served)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// No call ever sees a half-applied policy: while files are rewritten and
// reloaded, every policy read (and every chain built from it) is one of
// the complete versions written. Run with -race.
func TestRegistryNoHalfAppliedPolicy(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	body := func(n int) string {
		// Two fields that always change together.
		return fmt.Sprintf("version: 1\nlimits: {max_calls: %d}\ntimeouts: {call: %ds}\n", n, n)
	}
	path := filepath.Join(dir, "devops.yaml")
	writeAtomic(t, path, body(1))
	preg, err := policies.NewRegistry(dir, policies.WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := llmwrap.NewRegistry(preg)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	h := reg.Handler(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	}))
	ctx := middleware.WithTeam(context.Background(), "devops")
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				p := preg.Policy("devops")
				if time.Duration(p.Limits.MaxCalls)*time.Second != p.Timeouts.Call.Duration() {
					t.Errorf("half-applied policy: max_calls %d, call timeout %s", p.Limits.MaxCalls, p.Timeouts.Call)
					return
				}
				if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: "user", Content: "x"}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for n := 2; n <= 30; n++ {
		if n%7 == 0 {
			writeAtomic(t, path, "version: 1\nlimits: {max_calls: -1}\n") // broken: kept out
		} else {
			writeAtomic(t, path, body(n))
		}
		_ = preg.Reload()
	}
	close(done)
	wg.Wait()
	if got := preg.Policy("devops").Limits.MaxCalls; got != 30 {
		t.Errorf("final max_calls = %d, want 30", got)
	}
	if reg.Generation() != preg.Generation() {
		t.Errorf("chains at generation %d, policies at %d", reg.Generation(), preg.Generation())
	}
}

func (l *eventLog) unknownTeams() []middleware.UnknownTeam {
	return middlewaretest.Of[middleware.UnknownTeam](&l.Recorder)
}

// A typo in a team name is visible: the call is served under the default
// policy, and the registry warns once per unknown team (slog and an
// UnknownTeam event), however many calls the team makes. With teams:
// {unknown: error} in the default policy, or WithUnknownTeams, the call is
// refused with an error matching policies.ErrUnknownTeam.
func TestUnknownTeamWarnsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeAtomic(t, filepath.Join(dir, "default.yaml"), regDefault)
	writeAtomic(t, filepath.Join(dir, "payments.yaml"), teamFile(5))
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Text("ok"))
	client := func(reg *llmwrap.Registry) *goopenai.Client {
		cfg := goopenai.DefaultConfig("test")
		cfg.BaseURL = srv.URL
		cfg.HTTPClient = twopenai.NewHTTPClient(reg.Middleware(), twopenai.WithBaseTransport(srv.Transport()))
		return goopenai.NewClientWithConfig(cfg)
	}
	ask := func(c *goopenai.Client, team string, i int) error {
		_, err := c.CreateChatCompletion(middleware.WithTeam(context.Background(), team), goopenai.ChatCompletionRequest{Model: "gpt-4o-mini",
			Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: fmt.Sprintf("question %d", i)}}})
		return err
	}
	newReg := func(dir string, opts ...llmwrap.Option) (*llmwrap.Registry, *eventLog, *bytes.Buffer) {
		preg, err := policies.NewRegistry(dir)
		if err != nil {
			t.Fatal(err)
		}
		events := &eventLog{}
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &sync.Mutex{}}, nil))
		reg, err := llmwrap.NewRegistry(preg, append([]llmwrap.Option{llmwrap.WithObserver(events), llmwrap.WithLogger(logger)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })
		return reg, events, &logs
	}

	reg, events, logs := newReg(dir)
	c := client(reg)
	for i := range 5 {
		for _, team := range []string{"paymnts", "payments", "", "default", "devosp"} {
			if err := ask(c, team, i); err != nil {
				t.Fatalf("team %q: %v", team, err)
			}
		}
	}
	got := events.unknownTeams()
	if len(got) != 2 || got[0].Team != "paymnts" || got[1].Team != "devosp" || got[0].Refused ||
		!slices.Equal(got[0].Known, []string{"default", "payments"}) {
		t.Errorf("unknown-team events %+v, want one for paymnts and one for devosp", got)
	}
	if n := strings.Count(logs.String(), "unknown team"); n != 2 || !strings.Contains(logs.String(), "team=paymnts") {
		t.Errorf("%d warnings in the log, want 2:\n%s", n, logs.String())
	}
	// The warning of a typo of a team with a file names it; devosp is no
	// one's typo.
	if n := strings.Count(logs.String(), "did_you_mean="); n != 1 || !strings.Contains(logs.String(), "did_you_mean=payments") {
		t.Errorf("the log suggests %d teams, want payments for paymnts alone:\n%s", n, logs.String())
	}

	// teams: {unknown: error} in the default policy refuses the call.
	strict := t.TempDir()
	writeAtomic(t, filepath.Join(strict, "default.yaml"), regDefault+"teams: {unknown: error}\n")
	writeAtomic(t, filepath.Join(strict, "payments.yaml"), teamFile(5))
	reg, events, _ = newReg(strict)
	c = client(reg)
	before := srv.Count()
	for i := range 3 {
		err := ask(c, "paymnts", i)
		if !errors.Is(err, policies.ErrUnknownTeam) || !strings.Contains(err.Error(), `"paymnts"`) || !strings.Contains(err.Error(), `did you mean "payments"?`) {
			t.Fatalf("strict registry: err = %v, want policies.ErrUnknownTeam", err)
		}
	}
	if err := ask(c, "payments", 0); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != before+1 {
		t.Errorf("refused calls reached the provider: %d calls, want 1", srv.Count()-before)
	}
	if got := events.unknownTeams(); len(got) != 1 || !got[0].Refused {
		t.Errorf("strict events %+v", got)
	}

	// The registry option overrides the policy, both ways.
	reg, _, _ = newReg(dir, llmwrap.WithUnknownTeams(policies.UnknownTeamsError))
	if err := ask(client(reg), "paymnts", 9); !errors.Is(err, policies.ErrUnknownTeam) {
		t.Errorf("WithUnknownTeams(error): %v", err)
	}
	reg, _, _ = newReg(strict, llmwrap.WithUnknownTeams(policies.UnknownTeamsWarn))
	if err := ask(client(reg), "paymnts", 9); err != nil {
		t.Errorf("WithUnknownTeams(warn): %v", err)
	}
}
