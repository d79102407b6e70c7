package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
	"github.com/tokenwise/tokenwise/llmwrap/route/routeeval"
	"github.com/tokenwise/tokenwise/policies"
)

const routeUsage = `usage:
  tokenwise route eval (--policy FILE|DIR [--team T] | --weights FILE | --baseline length|category)
                       [--strong MODEL] [--weak MODEL] [--target 0.9] [--svg OUT.svg]
                       [--transfer OTHER.jsonl] [--output-tokens 256] [--routers 200] [--seed 1] DATA.jsonl
  tokenwise route train --out WEIGHTS [--label only-strong|strong-better] [--target 0.9]
                       [--bits 16] [--folds 5] [--epochs 15] [--seed 1] DATA.jsonl
`

// routeCmd runs `tokenwise route eval|train`.
func routeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "eval":
			return routeEval(args[1:], stdout, stderr)
		case "train":
			return routeTrain(args[1:], stdout, stderr)
		}
		if args[0] == "help" || isHelpFlag(args[0]) {
			fmt.Fprint(stdout, routeUsage)
			return 0
		}
	}
	fmt.Fprint(stderr, routeUsage)
	return 2
}

func routeEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	polPath := fs.String("policy", "", "policy file or directory: its routing rules (and routing.learned) are the router")
	team := fs.String("team", "", "team, when --policy is a directory")
	weights := fs.String("weights", "", "`FILE` of weights written by tokenwise route train")
	baseline := fs.String("baseline", "", "built-in scorer: length or category")
	strong := fs.String("strong", "", "strong model, for prices (default: the policy's, else gpt-4o)")
	weak := fs.String("weak", "", "weak model, for prices (default: the policy's, else gpt-4o-mini)")
	target := fs.Float64("target", 0.9, "quality target: the share of the weak-to-strong gap to recover (PGR)")
	svg := fs.String("svg", "", "write the plot to this SVG file")
	transfer := fs.String("transfer", "", "fit the threshold on DATA, report what it does on this file")
	outTok := fs.Int64("output-tokens", 256, "assumed output tokens per call, for costs")
	routers := fs.Int("routers", 200, "random routers of the band")
	seed := fs.Uint64("seed", 1, "seed of the random routers and of the folds")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 1 || count(*polPath != "", *weights != "", *baseline != "") != 1 || *target <= 0 || *target > 1 {
		fmt.Fprint(stderr, routeUsage)
		return usageStatus(err)
	}
	data := pos[0]
	ex, err := routeeval.ReadFile(data)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var sc routeeval.Scorer
	var pol *policies.Policy
	strongM, weakM := "gpt-4o", "gpt-4o-mini"
	switch {
	case *polPath != "":
		pol, err = load(*polPath, *team)
		if err != nil {
			printErr(stderr, err)
			return 1
		}
		ps, err := policyScorer(pol, *polPath, *strong)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if *team != "" {
			ps.Label += " (team " + *team + ")"
		}
		sc = ps
		strongM, weakM = ps.Strong, policyWeak(pol, ps.Strong)
	case *weights != "":
		m, err := learn.Load(*weights)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		sc = routeeval.Learned{Model: m, Label: filepath.Base(*weights)}
	case *baseline == "length":
		sc = routeeval.Length{}
	case *baseline == "category":
		sc = routeeval.CategoryBaseline{Seed: *seed}
	default:
		fmt.Fprintf(stderr, "unknown baseline %q (length, category)\n", *baseline)
		return 2
	}
	if *strong != "" {
		strongM = *strong
	}
	if *weak != "" {
		weakM = *weak
	}
	cfg := routeeval.Config{Target: *target, RandomRouters: *routers, Seed: *seed}
	if weakM == "" {
		fmt.Fprintln(stderr, "no weak model: the policy routes no rule to another model than the strong one; name it with --weak")
		return 1
	}
	if cfg.Prices, err = routeeval.PricesFor(pol, strongM, weakM); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cfg.Prices.OutputTokens = *outTok
	rep, err := routeeval.Evaluate(ex, sc, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *transfer != "" {
		other, err := routeeval.ReadFile(*transfer)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		tsc := sc
		if *baseline == "category" { // the priors of DATA, on the other file
			tsc = routeeval.CategoryBaseline{Fitted: routeeval.FitCategoryPrior(ex)}
		}
		if err := routeeval.EvaluateTransfer(rep, other, *transfer, tsc, cfg); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if err := routeeval.WriteText(stdout, data, rep); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *svg != "" {
		var b bytes.Buffer
		err := routeeval.WriteSVG(&b, rep.Scorer+" on "+filepath.Base(data), rep)
		if err == nil {
			err = os.WriteFile(*svg, b.Bytes(), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "plot written to %s\n", *svg)
	}
	return 0
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// policyScorer builds the router of a policy's routing section. The
// strong model is --strong, else routing.learned.strong, else
// routing.default.
func policyScorer(p *policies.Policy, path, strong string) (*routeeval.Policy, error) {
	if strong == "" {
		strong = p.Routing.Learned.Strong
	}
	if strong == "" {
		strong = p.Routing.Default
	}
	if strong == "" {
		return nil, fmt.Errorf("%s: no routing.default: name the strong model with --strong", path)
	}
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		return nil, err
	}
	ps := &routeeval.Policy{Router: rules, Strong: strong, Label: filepath.Base(path)}
	if !p.Routing.Learned.IsZero() {
		if ps.Learned, err = learn.Load(llmwrap.WeightsPath(p)); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// policyWeak is the weak model of a policy: routing.learned.weak, else
// routing.default when it is not the strong one, else the first rule's
// model that is not the strong one ("" if none).
func policyWeak(p *policies.Policy, strong string) string {
	if w := p.Routing.Learned.Weak; w != "" {
		return w
	}
	if d := p.Routing.Default; d != "" && d != strong {
		return d
	}
	for _, r := range p.Routing.Rules {
		if r.Model != strong {
			return r.Model
		}
	}
	return ""
}

func routeTrain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "weights file to write (required)")
	label := fs.String("label", "only-strong", "what to predict: only-strong (only the strong model is correct) or strong-better")
	target := fs.Float64("target", 0.9, "PGR target the threshold is calibrated for")
	bits := fs.Uint("bits", 16, "log2 of the hashed buckets (8..20)")
	folds := fs.Int("folds", 5, "folds of the cross-validation")
	epochs := fs.Int("epochs", 15, "epochs of gradient descent")
	seed := fs.Uint64("seed", 1, "seed of the folds, the order and the hash")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 1 || *out == "" || *target <= 0 || *target > 1 || *bits < 8 || *bits > 20 {
		fmt.Fprint(stderr, routeUsage)
		return usageStatus(err)
	}
	lab, err := learn.ParseLabel(*label)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ex, err := routeeval.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	m, rep, err := routeeval.Train(ex, routeeval.TrainConfig{Bits: uint8(*bits), Label: lab, Folds: *folds, Epochs: *epochs, Target: *target, Seed: *seed})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := m.Save(*out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "trained on %s: %d queries, %d labelled %s\n", pos[0], rep.N, rep.Positives, lab)
	fmt.Fprintf(stdout, "%d-fold cross-validation of the L2 strength (held-out APGR):\n", *folds)
	for _, c := range rep.CV {
		mark := ""
		if c.Lambda == rep.Lambda {
			mark = "  ← chosen"
		}
		fmt.Fprintf(stdout, "  lambda %-7g APGR %.3f%s\n", c.Lambda, c.APGR, mark)
	}
	fmt.Fprintf(stdout, "out-of-fold APGR %.3f; threshold %.4g for PGR %.2f (out of fold: %.1f%% strong, PGR %.2f)\n",
		rep.OOFAPGR, rep.Threshold, rep.Target, 100*rep.OOFAtTarget.Strong, rep.OOFAtTarget.PGR)
	st, _ := os.Stat(*out)
	size := int64(0)
	if st != nil {
		size = st.Size()
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, 2^%d int8 weights)\n", *out, size, *bits)
	fmt.Fprintf(stdout, "use it in a policy:\n%s", indent(fmt.Sprintf(
		"routing:\n  default: gpt-4o\n  learned: {weights: %s, threshold: %.4g, weak: gpt-4o-mini}\n", *out, rep.Threshold)))
	return 0
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
