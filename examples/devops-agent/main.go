// Command devops-agent runs the seed's DevOps agent ("I'm out of disk
// space. Sort it out.") through tokenwise, twice: as a langchaingo
// OpenAI-functions agent and as a plain go-openai tool loop. It prints every
// LLM call (model, stage, tokens, USD, latency) and the run report.
//
// By default it talks to an embedded scripted OpenAI-compatible server: no
// key, no network. With OPENAI_API_KEY set (and optionally OPENAI_BASE_URL)
// it talks to the real endpoint.
//
//	go run ./examples/devops-agent
//	go run ./examples/devops-agent -policy policies/devops.yaml -mode openai
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.policyFile, "policy", "", "policy file (default: the embedded default policy)")
	flag.StringVar(&cfg.mode, "mode", "both", "which agent to run: langchaingo, openai or both")
	flag.StringVar(&cfg.task, "task", "I'm out of disk space. Sort it out.", "the task for the agent")
	flag.StringVar(&cfg.traceFile, "trace", "", "write a JSONL trace of the routed run's LLM calls to this file (see tokenwise replay)")
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
	traceFile  string // JSONL trace of the routed run's calls; "" = none
}

func run(ctx context.Context, out io.Writer, cfg config) error {
	env, err := newEnv(out, cfg)
	if err != nil {
		return err
	}
	defer env.close()
	modes := map[string][]string{"both": {"langchaingo", "openai"}, "langchaingo": {"langchaingo"}, "openai": {"openai"}}[cfg.mode]
	if modes == nil {
		return fmt.Errorf("unknown -mode %q (want langchaingo, openai or both)", cfg.mode)
	}
	// The same runs on the strong model only, for the side-by-side cost.
	strong, err := newEnv(io.Discard, cfg)
	if err != nil {
		return err
	}
	defer strong.close()
	strong.policy = route.StrongOnly(env.policy, "")
	routedCost, strongCost := &costs{}, &costs{}
	if env.chain, err = llmwrap.Build(env.policy, llmwrap.WithObserver(middleware.ObserverFunc(env.printCall)), llmwrap.WithObserver(routedCost)); err != nil {
		return err
	}
	if strong.chain, err = llmwrap.Build(strong.policy, llmwrap.WithObserver(strongCost)); err != nil {
		return err
	}
	if cfg.traceFile != "" {
		f, err := os.Create(cfg.traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		rec := observe.NewRecorder(f)
		defer rec.Flush()
		env.chain = middleware.Chain(rec.Middleware(), env.chain)
	}
	if err := runModes(ctx, env, modes, cfg.task); err != nil {
		return err
	}
	if err := runModes(ctx, strong, modes, cfg.task); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== cost: stage routing vs %s only\n", strong.policy.Routing.Default)
	for _, id := range []string{"langchaingo-agent", "go-openai-loop"} {
		r, s := routedCost.get(id), strongCost.get(id)
		if s == 0 {
			continue
		}
		fmt.Fprintf(out, "  %-18s routed %s   strong-only %s   (%.0f%% of the cost)\n", id,
			middleware.FormatPico(r), middleware.FormatPico(s), 100*float64(r)/float64(s))
	}
	return nil
}

func runModes(ctx context.Context, e *env, modes []string, task string) error {
	for _, m := range modes {
		var err error
		switch m {
		case "langchaingo":
			err = e.runLangchaingo(ctx, task)
		case "openai":
			err = e.runGoOpenAI(ctx, task)
		}
		if err != nil {
			return fmt.Errorf("%s agent: %w", m, err)
		}
	}
	return nil
}

// costs sums the USD of finished calls per run id.
type costs struct {
	mu    sync.Mutex
	byRun map[string]int64
}

func (c *costs) Observe(_ context.Context, ev middleware.Event) {
	if f, ok := ev.(middleware.CallFinished); ok {
		c.mu.Lock()
		if c.byRun == nil {
			c.byRun = map[string]int64{}
		}
		c.byRun[f.Facts.Run] += f.Facts.CostPico
		c.mu.Unlock()
	}
}

func (c *costs) get(run string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byRun[run]
}
