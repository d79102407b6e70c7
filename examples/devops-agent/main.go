// Command devops-agent runs the seed's DevOps agent ("I'm out of disk
// space. Sort it out.") through tokenwise under four policies, and prints
// what each costs side by side:
//
//	a) every call on the strong model (gpt-4o only), the baseline;
//	b) the seed's stage routing: the cheap model picks tools, the strong
//	   one reads results and answers (the policy given with -policy, else
//	   the embedded default);
//	c) the cheap model runs the whole loop and the final answer is written
//	   again by the strong model (routing.regenerate_final);
//	d) c) plus the response cache, with the question asked twice.
//
// Each scenario runs the agent as a langchaingo OpenAI-functions agent and
// as a plain go-openai tool loop (-mode). Every LLM call (model, stage,
// tokens, USD, latency) and every tool call is printed, then each run's
// report. The figures are computed from the usage the provider reports and
// the catalog's prices; none is written in the code.
//
// By default it talks to an embedded scripted OpenAI-compatible server: no
// key, no network. With OPENAI_API_KEY set (and optionally OPENAI_BASE_URL)
// it talks to the real endpoint.
//
//	go run ./examples/devops-agent
//	go run ./examples/devops-agent -policy examples/policies/devops.yaml -mode openai
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.policyFile, "policy", "", "policy file of scenario b, the base of c and d (default: the embedded default policy)")
	flag.StringVar(&cfg.mode, "mode", "both", "which agent to run: langchaingo, openai or both")
	flag.StringVar(&cfg.task, "task", "I'm out of disk space. Sort it out.", "the task for the agent")
	flag.StringVar(&cfg.traceFile, "trace", "", "write a JSONL trace of scenario b's LLM calls to this file (see tokenwise replay)")
	flag.Parse()
	cfg.apiKey = os.Getenv("OPENAI_API_KEY")
	cfg.baseURL = os.Getenv("OPENAI_BASE_URL")
	if err := run(context.Background(), os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "devops-agent:", err)
		os.Exit(1)
	}
}

type config struct {
	policyFile string
	mode       string
	task       string
	apiKey     string
	baseURL    string
	traceFile  string // JSONL trace of scenario b's calls; "" = none
}

// scenario is one policy the task runs under.
type scenario struct {
	key, name string
	policy    *policies.Policy
	repeat    int // times the question is asked
}

func run(ctx context.Context, out io.Writer, cfg config) error {
	modes := map[string][]string{"both": {"langchaingo", "openai"}, "langchaingo": {"langchaingo"}, "openai": {"openai"}}[cfg.mode]
	if modes == nil {
		return fmt.Errorf("unknown -mode %q (want langchaingo, openai or both)", cfg.mode)
	}
	base := policies.Default()
	if cfg.policyFile != "" {
		var err error
		if base, err = policies.LoadFileExtends(cfg.policyFile); err != nil {
			return err
		}
	}
	strong := strongModel(base)
	loop := cheapLoop(base)
	scenarios := []scenario{
		{key: "a", name: strong + " only", policy: llmwrap.StrongOnly(base, strong), repeat: 1},
		{key: "b", name: "stage routing (policy " + base.Name + ")", policy: base, repeat: 1},
		{key: "c", name: "cheap loop, final answer by " + strong, policy: loop, repeat: 1},
		{key: "d", name: "c + cache, question asked twice", policy: withCache(loop), repeat: 2},
	}
	if cfg.apiKey == "" {
		fmt.Fprintln(out, "provider: embedded scripted OpenAI-compatible server (set OPENAI_API_KEY for a real endpoint)")
	} else {
		fmt.Fprintln(out, "provider:", cmp.Or(cfg.baseURL, "https://api.openai.com/v1"))
	}
	results := make([]*tally, len(scenarios))
	for i, sc := range scenarios {
		if err := sc.policy.Validate(); err != nil {
			return fmt.Errorf("scenario %s: %w", sc.key, err)
		}
		t := &tally{byModel: map[string]int{}}
		results[i] = t
		e, err := newEnv(out, cfg, sc.policy, t)
		if err != nil {
			return err
		}
		if sc.key == "b" && cfg.traceFile != "" {
			f, err := os.Create(cfg.traceFile)
			if err != nil {
				e.close()
				return err
			}
			rec := observe.NewRecorder(f)
			e.chain = middleware.Chain(rec.Middleware(), e.chain)
			defer func() { rec.Flush(); f.Close() }()
		}
		fmt.Fprintf(out, "\n######## %s) %s\n", sc.key, sc.name)
		for n := 1; n <= sc.repeat; n++ {
			for _, m := range modes {
				id := sc.key + "/" + runName[m]
				if sc.repeat > 1 {
					id += fmt.Sprintf("#%d", n)
				}
				if err := e.runAgent(ctx, m, id, cfg.task); err != nil {
					e.close()
					return fmt.Errorf("scenario %s, %s agent: %w", sc.key, m, err)
				}
			}
		}
		e.close()
	}
	printComparison(out, scenarios, results, len(modes))
	return nil
}

var runName = map[string]string{"langchaingo": "langchaingo-agent", "openai": "go-openai-loop"}

// strongModel is p's strong model: its routing.default, else the model
// the agents ask for (gpt-4o), which p's calls no rule matches stay on.
func strongModel(p *policies.Policy) string {
	return cmp.Or(p.Routing.Default, "gpt-4o")
}

// cheapLoop is p with the whole agent loop on the cheap model (the model
// p's first tool-selection rule picks, else gpt-4o-mini) and the final
// answer regenerated by p's default (strong) model.
func cheapLoop(p *policies.Policy) *policies.Policy {
	c := *p
	strong := strongModel(p)
	cheap := "gpt-4o-mini"
	for _, r := range p.Routing.Rules {
		if r.When.Stage == policies.StageToolSelection && r.Model != "" {
			cheap = r.Model
			break
		}
	}
	c.Name = "cheap-loop"
	c.Routing = policies.Routing{
		Default:      strong,
		LargerWindow: p.Routing.LargerWindow,
		Rules: []policies.Rule{
			{Name: "cheap-tool-selection", When: policies.Condition{Stage: policies.StageToolSelection}, Model: cheap},
			{Name: "cheap-result-analysis", When: policies.Condition{Stage: policies.StageResultAnalysis}, Model: cheap},
		},
		RegenerateFinal: policies.RegenerateFinal{Enabled: true, Model: strong},
	}
	return &c
}

// withCache is p with an exact response cache (by default it also stores
// answers to non-deterministic requests: agents rarely set temperature 0).
func withCache(p *policies.Policy) *policies.Policy {
	c := *p
	c.Name = p.Name + "+cache"
	c.Cache = policies.Cache{Enabled: true, TTL: policies.Duration(time.Hour), MaxEntries: 1000}
	return &c
}

// tally sums a scenario's calls: cost, calls per answering model, cache
// hits and what they saved.
type tally struct {
	mu      sync.Mutex
	calls   int
	cost    int64
	saved   int64
	hits    int
	byModel map[string]int
}

func (t *tally) Observe(_ context.Context, ev middleware.Event) {
	f, ok := ev.(middleware.CallFinished)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	t.cost += f.Facts.CostPico
	if f.Facts.Cache == middleware.CacheHit {
		t.hits++
		t.saved += f.Facts.SavedPico
		return
	}
	t.byModel[f.Facts.Model]++
}

// printComparison prints the scenarios side by side. The saving is against
// scenario a asked the same number of times.
func printComparison(out io.Writer, scs []scenario, ts []*tally, agents int) {
	fmt.Fprintf(out, "\n######## the same task under four policies (%d agent(s) per question)\n", agents)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "policy\tquestions\tLLM calls\tanswered by\tcache hits\tcost\tper question\tsaving vs a")
	perQuestion := func(i int) float64 { return float64(ts[i].cost) / float64(scs[i].repeat) }
	for i, sc := range scs {
		t := ts[i]
		models := make([]string, 0, len(t.byModel))
		for m := range t.byModel {
			models = append(models, m)
		}
		sort.Strings(models)
		by := make([]string, len(models))
		for j, m := range models {
			by[j] = fmt.Sprintf("%s %d", m, t.byModel[m])
		}
		saving := "-"
		if i > 0 && ts[0].cost > 0 {
			saving = fmt.Sprintf("%.0f%%", 100*(1-perQuestion(i)/perQuestion(0)))
		}
		fmt.Fprintf(tw, "%s) %s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", sc.key, sc.name, sc.repeat, t.calls, strings.Join(by, ", "),
			t.hits, middleware.FormatPico(t.cost), middleware.FormatPico(int64(perQuestion(i)+0.5)), saving)
	}
	tw.Flush()
	if i := slices.IndexFunc(scs, func(s scenario) bool { return s.repeat > 1 }); i >= 0 && ts[i].hits > 0 {
		fmt.Fprintf(out, "the cache answered %d calls of the repeated question, saving %s\n", ts[i].hits, middleware.FormatPico(ts[i].saved))
	}
}
