package policies

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// A timeouts.models entry with several mistakes is refused with every one
// of them, each at its field and line.
func TestTimeoutsModelsProblemsNameTheirLine(t *testing.T) {
	t.Parallel()
	src := `version: 1
timeouts:
  call: 30s
  total: 60s
  models:
    - match: ["o3*", "o1[", ""]
      call: -1m
      first_token: -5s
    - call: 5m
      total: 2m
    - match: [o4-mini]
    - match: []
      idle: 1m
budget:
  store: {reservation_ttl: 3m}
`
	_, err := LoadBytes([]byte(src), "p.yaml")
	if err == nil {
		t.Fatal("LoadBytes accepted a policy with bad timeouts.models entries")
	}
	want := []struct {
		path string
		line int
		msg  string
	}{
		{"timeouts.models[0].match[1]", 6, `"o1[" is not a model name or a path.Match pattern`},
		{"timeouts.models[0].match[2]", 6, `"" is not a model name or a path.Match pattern`},
		{"timeouts.models[0].call", 7, "must not be negative, got -1m"},
		{"timeouts.models[0].first_token", 8, "must not be negative, got -5s"},
		{"timeouts.models[1].match", 9, "is required"},
		{"timeouts.models[1].total", 10, "2m is shorter than the entry's call timeout (5m)"},
		{"timeouts.models[2]", 11, "sets no limit"},
		{"timeouts.models[3].match", 12, "is required"},
		{"budget.store.reservation_ttl", 15, "3m is shorter than timeouts.models[1].call (5m)"},
	}
	probs := problemsOf(t, err)
	for _, w := range want {
		found := false
		for _, pr := range probs {
			if pr.Path == w.path && pr.Line == w.line && pr.File == "p.yaml" && strings.Contains(pr.Msg, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem %s at line %d containing %q; got:\n%v", w.path, w.line, w.msg, err)
		}
	}
	if len(probs) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(probs), len(want), err)
	}
}

// An entry of timeouts.models sets the limits of the models it matches,
// the first matching entry winning; a limit it leaves out is the policy's,
// and a total it leaves out is raised to its call.
func TestTimeoutsFor(t *testing.T) {
	t.Parallel()
	p, err := LoadBytes([]byte(`version: 1
timeouts:
  call: 30s
  total: 60s
  first_token: 20s
  idle: 15s
  models:
    - match: [o3-pro]
      call: 20m
      total: 30m
    - match: ["o3*", gpt-5]
      call: 5m
      first_token: 4m
    - match: [o3-mini]
      call: 1s
`), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := time.Minute
	for _, c := range []struct {
		model                    string
		call, total, first, idle time.Duration
	}{
		{"gpt-4o", 30 * time.Second, 60 * time.Second, 20 * time.Second, 15 * time.Second},
		{"o3-pro", 20 * m, 30 * m, 20 * time.Second, 15 * time.Second},
		{"o3", 5 * m, 5 * m, 4 * m, 15 * time.Second},
		{"o3-mini", 5 * m, 5 * m, 4 * m, 15 * time.Second}, // the first match wins
		{"gpt-5", 5 * m, 5 * m, 4 * m, 15 * time.Second},
		{"gpt-5-mini", 30 * time.Second, 60 * time.Second, 20 * time.Second, 15 * time.Second},
	} {
		got := p.Timeouts.For(c.model)
		if got.Call.Duration() != c.call || got.Total.Duration() != c.total || got.FirstToken.Duration() != c.first || got.Idle.Duration() != c.idle || got.Models != nil {
			t.Errorf("For(%q) = %+v, want call %v total %v first_token %v idle %v", c.model, got, c.call, c.total, c.first, c.idle)
		}
	}
	if got := p.Timeouts.MaxCall().Duration(); got != 20*m {
		t.Errorf("MaxCall = %v, want 20m", got)
	}
}

// The default policy gives every reasoning model of the catalog limits a
// reasoning call can finish within, and leaves every other chat model of
// it at 30s a call, 60s in all.
func TestDefaultTimeoutsOfReasoningModels(t *testing.T) {
	t.Parallel()
	p := Default()
	reasoning := func(name string) bool {
		for _, pre := range []string{"o1", "o3", "o4", "gpt-5", "claude-opus-4", "claude-opus-5", "claude-sonnet-4", "claude-haiku-4", "claude-3-7-sonnet", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-3"} {
			if strings.HasPrefix(name, pre) {
				return true
			}
		}
		return false
	}
	n := 0
	for name := range DefaultCatalog() {
		got := p.Timeouts.For(name)
		if reasoning(name) {
			n++
			if got.Call.Duration() < 10*time.Minute || got.FirstToken.Duration() < 10*time.Minute || got.Total.Duration() < got.Call.Duration() {
				t.Errorf("%s: %+v, want at least 10m a call and for its first token", name, got)
			}
			continue
		}
		if got.Call.Duration() != 30*time.Second || got.Total.Duration() != time.Minute {
			t.Errorf("%s: %+v, want 30s a call, 60s in all", name, got)
		}
	}
	if n == 0 {
		t.Fatal("no reasoning model in the catalog")
	}
	for _, name := range []string{"deepseek-reasoner", "o3-2025-04-16", "gpt-5.4-mini-2026-01-01"} {
		if got := p.Timeouts.For(name); got.Call.Duration() < 10*time.Minute {
			t.Errorf("%s: %+v, want a reasoning model's limits", name, got)
		}
	}
}

// A team file that extends the default inherits its timeouts.models when
// it writes none (its own call and total apply to the other models), and
// owns the list when it writes one: lists are replaced, not merged.
func TestExtendsTimeoutsModels(t *testing.T) {
	t.Parallel()
	m := time.Minute
	for _, c := range []struct {
		name, team string
		o3, o1     time.Duration // call of o3 and of o1
		gpt4o      time.Duration
	}{
		{"none written: inherited", "timeouts: {call: 45s}\n", 10 * m, 10 * m, 45 * time.Second},
		{"own list replaces", "timeouts:\n  models:\n    - match: [\"o3*\"]\n      call: 3m\n", 3 * m, 30 * time.Second, 30 * time.Second},
		{"null resets", "timeouts: {models: null}\n", 30 * time.Second, 30 * time.Second, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"default.yaml": string(defaultYAML), "ml.yaml": "version: 1\nextends: default.yaml\n" + c.team})
			set, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			to := set.Policy("ml").Timeouts
			if got := to.For("o3").Call.Duration(); got != c.o3 {
				t.Errorf("o3 call %v, want %v", got, c.o3)
			}
			if got := to.For("o1").Call.Duration(); got != c.o1 {
				t.Errorf("o1 call %v, want %v", got, c.o1)
			}
			if got := to.For("gpt-4o").Call.Duration(); got != c.gpt4o {
				t.Errorf("gpt-4o call %v, want %v", got, c.gpt4o)
			}
		})
	}
	// An entry the team file writes wrong is refused at the team file's line.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"default.yaml": string(defaultYAML),
		"ml.yaml": "version: 1\nextends: default.yaml\ntimeouts:\n  models:\n    - match: [o3]\n      call: 5m\n      total: 1m\n"})
	_, err := LoadDir(dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("ml.yaml:%d", 7)) || !strings.Contains(err.Error(), "timeouts.models[0].total") {
		t.Errorf("err %v, want ml.yaml:7 timeouts.models[0].total refused", err)
	}
}

// For every valid policy, the limits For resolves for any model keep the
// invariant Validate holds for the policy's own: a total, when set, is no
// shorter than the call it bounds; and each limit is the matching entry's
// when it sets one, else the policy's.
func TestTimeoutsForProperty(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	durs := []Duration{0, Duration(time.Second), Duration(30 * time.Second), Duration(time.Minute), Duration(10 * time.Minute)}
	d := func() Duration { return durs[r.IntN(len(durs))] }
	pats := []string{"o3*", "o3", "gpt-5*", "*", "o[13]*", "gpt-4o"}
	models := []string{"o3", "o3-mini", "o1", "gpt-5", "gpt-5-mini", "gpt-4o", "gpt-4o-mini", "claude-opus-4-6", ""}
	valid := 0
	for range 5000 {
		p := &Policy{Version: 1, Timeouts: Timeouts{Call: d(), Total: d(), FirstToken: d(), Idle: d()}}
		for range r.IntN(4) {
			m := ModelTimeouts{Call: d(), Total: d(), FirstToken: d(), Idle: d()}
			for range 1 + r.IntN(2) {
				m.Match = append(m.Match, pats[r.IntN(len(pats))])
			}
			p.Timeouts.Models = append(p.Timeouts.Models, m)
		}
		if p.Validate() != nil {
			continue
		}
		valid++
		for _, model := range models {
			got := p.Timeouts.For(model)
			if got.Total > 0 && got.Call > 0 && got.Total < got.Call {
				t.Fatalf("%+v: For(%q) = %+v: total below call", p.Timeouts, model, got)
			}
			base := p.Timeouts
			for _, m := range p.Timeouts.Models {
				if m.Matches(model) {
					if (m.Call > 0 && got.Call != m.Call) || (m.Call == 0 && got.Call != base.Call) ||
						(m.FirstToken > 0 && got.FirstToken != m.FirstToken) || (m.FirstToken == 0 && got.FirstToken != base.FirstToken) ||
						(m.Idle > 0 && got.Idle != m.Idle) || (m.Idle == 0 && got.Idle != base.Idle) ||
						(m.Total > 0 && got.Total != m.Total) || (m.Total == 0 && got.Total != max(base.Total, got.Call) && base.Total != 0) ||
						(m.Total == 0 && base.Total == 0 && got.Total != 0) {
						t.Fatalf("%+v: For(%q) = %+v, not the first matching entry %+v over the policy's", p.Timeouts, model, got, m)
					}
					break
				}
			}
		}
	}
	if valid < 500 {
		t.Fatalf("only %d valid policies of 5000: the generator tests little", valid)
	}
}

// A model named with a router's prefix (OpenRouter's and LiteLLM's
// "openai/o3", "deepseek/deepseek-reasoner") is the catalog's model after
// the prefix, priced as it (Policy.Model), and gets its timeouts.models
// limits too: the default policy's reasoning entry, not 30s a call that
// cuts it, retries it and bills it twice. A pattern that names the prefix
// itself still matches the whole name, and the whole name is tried first.
func TestTimeoutsForARoutersPrefixedName(t *testing.T) {
	t.Parallel()
	p := Default()
	for _, name := range []string{"openai/o3", "openai/o3-mini-2025-01-31", "openai/o4-mini", "openrouter/openai/gpt-5", "anthropic/claude-sonnet-4-5"} {
		if _, ok := p.Model(name); !ok {
			t.Fatalf("the catalog does not know %s: the test's premise is gone", name)
		}
		if got := p.Timeouts.For(name); got.Call.Duration() != 10*time.Minute || got.Idle.Duration() != 5*time.Minute {
			t.Errorf("For(%q) = %+v, want the reasoning entry's 10m call, 5m idle", name, got)
		}
	}
	for _, name := range []string{"openai/gpt-4o", "o3/", "/", "openai/"} {
		if got := p.Timeouts.For(name); got.Call.Duration() != 30*time.Second {
			t.Errorf("For(%q) = %+v, want the policy's 30s", name, got)
		}
	}
	own := ModelTimeouts{Match: []string{"azure/*"}, Call: Duration(time.Minute)}
	if !own.Matches("azure/o3") || own.Matches("o3") {
		t.Errorf("a pattern with a prefix: Matches(azure/o3) = %v, Matches(o3) = %v; want true, false", own.Matches("azure/o3"), own.Matches("o3"))
	}
}

// The embedded default policy's run deadline is longer than the longest
// call it lets any model make (a call's total, a reasoning model's 10m):
// a run is never cut inside a call the same policy allows.
func TestDefaultRunOutlastsItsLongestCall(t *testing.T) {
	p := Default()
	run := p.Limits.RunTimeout.Duration()
	if run <= 0 {
		t.Fatal("the default policy has no run_timeout")
	}
	longest := p.Timeouts.For("gpt-4o").Total.Duration()
	for _, m := range p.Timeouts.Models {
		for _, name := range m.Match {
			if tt := p.Timeouts.For(strings.TrimSuffix(name, "*")).Total.Duration(); tt > longest {
				longest = tt
			}
		}
	}
	if longest < 10*time.Minute {
		t.Fatalf("the default's longest call total is %v, want a reasoning model's 10m", longest)
	}
	if run <= longest {
		t.Errorf("limits.run_timeout %v is not longer than the longest call the default allows (%v)", run, longest)
	}
}

// A team file that extends the default, inherits its timeouts.models
// entries and raises a limit of its own above an entry's (timeouts.call:
// 15m) does not leave the entry's models with the shorter one: a reasoning
// model's limits are never below the file's own (o3's call 15m, not the
// default's 10m while gpt-4o gets 15m); a limit the file keeps below the
// entry's leaves the entry's. Random limits, each kind checked.
func TestInheritedTimeoutsModelsFollowTheFilesRaisedLimits(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	durs := []string{"20s", "45s", "2m", "6m", "10m", "12m", "15m", "30m"}
	for i := range 40 {
		pick := func() string { return durs[r.IntN(len(durs))] }
		call, first, idle := pick(), pick(), pick()
		team := fmt.Sprintf("timeouts: {call: %s, first_token: %s, idle: %s}\n", call, first, idle)
		if i == 0 {
			team, call, first, idle = "timeouts: {call: 15m}\n", "15m", "", ""
		}
		t.Run(strings.TrimSpace(team), func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"default.yaml": string(defaultYAML), "ml.yaml": "version: 1\nextends: default.yaml\n" + team})
			set, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			to := set.Policy("ml").Timeouts
			base := Default().Timeouts.For("o3")
			for _, m := range []string{"o3", "gpt-5", "claude-sonnet-4-5"} {
				got, other := to.For(m), to.For("gpt-4o")
				for _, k := range []struct {
					name              string
					got, other, deflt Duration
				}{
					{"call", got.Call, other.Call, base.Call},
					{"total", got.Total, other.Total, base.Total},
					{"first_token", got.FirstToken, other.FirstToken, base.FirstToken},
					{"idle", got.Idle, other.Idle, base.Idle},
				} {
					if want := max(k.other, k.deflt); k.got != want {
						t.Errorf("%s's %s is %v, want %v (the file's %v, the default's entry's %v)", m, k.name, k.got, want, k.other, k.deflt)
					}
				}
			}
		})
	}
}

// randomCase writes name with each letter in a random case.
func randomCase(r *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if r.IntN(2) == 0 {
			b[i] = byte(strings.ToUpper(string(c))[0])
		}
	}
	return string(b)
}

// A model named in another case than the catalog's ("O3", "GPT-5",
// "OpenAI/o4-mini"), which the catalog prices as its model, gets that
// model's timeouts.models limits too, not the policy's 30s that cut a
// reasoning call, retry it and bill it twice: random casings of the
// default's reasoning families and of other models, with and without a
// router's prefix in random case. A name an entry matches as written
// keeps that entry, before one that matches it in lower case.
func TestTimeoutsModelsFoldCase(t *testing.T) {
	t.Parallel()
	p := Default()
	r := rand.New(rand.NewPCG(7, 11))
	reasoning := []string{"o1", "o3", "o3-mini-2025-01-31", "o4-mini", "gpt-5", "gpt-5-mini", "claude-sonnet-4-5"}
	other := []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1"}
	prefixes := []string{"", "", "openai/", "openrouter/openai/", "azure/"}
	for range 2000 {
		base, want := reasoning[r.IntN(len(reasoning))], 10*time.Minute
		if r.IntN(3) == 0 {
			base, want = other[r.IntN(len(other))], 30*time.Second
		}
		name := randomCase(r, prefixes[r.IntN(len(prefixes))]+base)
		if _, ok := p.Model(name); !ok {
			t.Fatalf("the catalog does not price %q: the test's premise is gone", name)
		}
		if got := p.Timeouts.For(name).Call.Duration(); got != want {
			t.Fatalf("For(%q).Call = %v, want %v (as For(%q))", name, got, want, base)
		}
	}
	to := Timeouts{Call: Duration(time.Second), Models: []ModelTimeouts{
		{Match: []string{"o3*"}, Call: Duration(time.Minute)},
		{Match: []string{"O3-Custom"}, Call: Duration(time.Hour)},
	}}
	for name, want := range map[string]time.Duration{"O3-Custom": time.Hour, "O3-CUSTOM": time.Minute, "O3": time.Minute, "gpt-4o": time.Second} {
		if got := to.For(name).Call.Duration(); got != want {
			t.Errorf("For(%q).Call = %v, want %v", name, got, want)
		}
	}
	if !p.Timeouts.Models[0].Matches("OpenAI/O3") {
		t.Error("the default's reasoning entry does not match OpenAI/O3")
	}
}
