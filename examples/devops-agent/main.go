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
)

func main() {
	var cfg config
	flag.StringVar(&cfg.policyFile, "policy", "", "policy file (default: the embedded default policy)")
	flag.StringVar(&cfg.mode, "mode", "both", "which agent to run: langchaingo, openai or both")
	flag.StringVar(&cfg.task, "task", "I'm out of disk space. Sort it out.", "the task for the agent")
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
	for _, m := range modes {
		var err error
		switch m {
		case "langchaingo":
			err = env.runLangchaingo(ctx, cfg.task)
		case "openai":
			err = env.runGoOpenAI(ctx, cfg.task)
		}
		if err != nil {
			return fmt.Errorf("%s agent: %w", m, err)
		}
	}
	return nil
}
