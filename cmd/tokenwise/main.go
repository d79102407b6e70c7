// Command tokenwise checks and explains policy files and replays recorded
// traces through a policy.
//
//	tokenwise policy check DIR|FILE               validate; every problem as file:line:col: field: message; exit 1 on any (and on a DIR without a policy file)
//	tokenwise policy explain DIR|FILE --team T    the effective policy after extends, each value with its file:line
//	tokenwise replay --policy FILE TRACE.jsonl    what the trace would have cost and saved under the policy;
//	  --runs-per-day N / --calls-per-day N          and what a day, 30 days and the team budget's period of such traffic cost
//	tokenwise policy schema                       the JSON Schema of policy files (policies/schema.json)
//	tokenwise route eval ... DATA.jsonl           measure a router on labelled data (see route.go)
//	tokenwise route train --out W DATA.jsonl      train a learned router on labelled data
//	tokenwise catalog import PRICES.json          LiteLLM's price file as a policy file of models (extend it); skipped entries on stderr
//	tokenwise serve -config gateway.yaml          the OpenAI-compatible gateway (package gateway)
//	tokenwise gateway init [DIR]                  write a gateway file, a policy directory and a virtual key to start from
//	tokenwise gateway check gateway.yaml          validate a gateway file and its policy directory
//	tokenwise gateway schema                      the JSON Schema of gateway files (gateway/schema.json)
//
// The trace format is documented in package observe; the DevOps example
// writes one with -trace FILE.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage:
  tokenwise policy check DIR|FILE
  tokenwise policy explain DIR|FILE [--team T]
  tokenwise replay --policy FILE|DIR [--team T] [--runs-per-day N | --calls-per-day N] [--progress auto|always|never] TRACE.jsonl
  tokenwise policy schema
  tokenwise route eval|train ... DATA.jsonl
  tokenwise catalog import [-o FILE] [--provider P,...] PRICES.json
  tokenwise serve [-config gateway.yaml] [-listen ADDR] [-log-level L]
  tokenwise gateway init [DIR] [-base-url URL] [-api-key-env VAR] [-model M] [-team T] [-listen ADDR]
  tokenwise gateway check gateway.yaml
  tokenwise gateway schema
`

// run is the command; it returns the exit status (0 ok, 1 problems, 2 usage).
// Help asked for (tokenwise help, -h, --help, a command's -h) is not a
// usage error: it exits 0.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "help" || isHelpFlag(args[0]) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch {
	case args[0] == "policy" && len(args) > 1 && args[1] == "check":
		return check(args[2:], stdout, stderr)
	case args[0] == "policy" && len(args) > 1 && args[1] == "explain":
		return explain(args[2:], stdout, stderr)
	case args[0] == "policy" && len(args) == 2 && args[1] == "schema":
		return schema(stdout, stderr)
	case args[0] == "replay":
		return replay(args[1:], stdout, stderr)
	case args[0] == "route":
		return routeCmd(args[1:], stdout, stderr)
	case args[0] == "serve":
		return serve(args[1:], stdout, stderr)
	case args[0] == "gateway" && len(args) == 2 && args[1] == "schema":
		return gatewaySchema(stdout, stderr)
	case args[0] == "gateway" && len(args) > 1 && args[1] == "init":
		return gatewayInit(args[2:], stdout, stderr)
	case args[0] == "gateway" && len(args) > 1 && args[1] == "check":
		return gatewayCheck(args[2:], stdout, stderr)
	case args[0] == "catalog" && len(args) > 1 && args[1] == "import":
		return catalogImport(args[2:], stdout, stderr)
	}
	if slices.ContainsFunc(args, isHelpFlag) { // gateway schema -h, policy -h
		fmt.Fprint(stdout, usage)
		return 0
	}
	if msg := unknownCommand(args); msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// commands are the commands of run, by their words.
var commands = []string{"policy check", "policy explain", "policy schema", "replay", "route eval", "route train",
	"catalog import", "serve", "gateway init", "gateway check", "gateway schema"}

// unknownCommand says which command of args tokenwise does not have, and
// the one it is likely meant to be: a typo of a command ("polcy check",
// "gateway chek"), or a command without its group ("check", "init"). It
// returns "" when args name a command (given wrong arguments: the usage
// says the rest).
func unknownCommand(args []string) string {
	groups := map[string][]string{}
	var singles []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c, " "); ok {
			groups[g] = append(groups[g], sub)
		} else {
			singles = append(singles, c)
		}
	}
	names := slices.Sorted(maps.Keys(groups))
	first := args[0]
	group := first
	if _, ok := groups[first]; !ok {
		group = policies.Suggest(first, names)
	}
	var name, meant []string
	switch {
	case group != "" && len(args) > 1:
		name = []string{first + " " + args[1]}
		sub := args[1]
		if !slices.Contains(groups[group], sub) {
			sub = policies.Suggest(sub, groups[group])
		}
		if sub != "" {
			meant = []string{group + " " + sub}
		}
	case group != "":
		return "" // a group alone: the usage lists its commands
	default:
		name = []string{first}
		for _, c := range commands {
			if _, sub, ok := strings.Cut(c, " "); ok && sub == first {
				meant = append(meant, c) // a command without its group
			}
		}
		if s := policies.Suggest(first, singles); s != "" && len(meant) == 0 {
			meant = []string{s}
		}
	}
	if slices.Contains(commands, name[0]) {
		return "" // a command given wrong arguments
	}
	msg := fmt.Sprintf("tokenwise: unknown command %q", name[0])
	for i, m := range meant {
		if i == 0 {
			msg += fmt.Sprintf(" (did you mean %q", "tokenwise "+m)
		} else {
			msg += fmt.Sprintf(" or %q", "tokenwise "+m)
		}
	}
	if len(meant) > 0 {
		msg += "?)"
	}
	return msg
}

// isHelpFlag reports whether arg asks for help as the flag package reads
// it: -h, -help, --h or --help.
func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// usageStatus is the exit status of a command whose arguments are wrong
// or asked for help: 0 for help (flag.ErrHelp, after the flag package
// printed the flags), 2 otherwise.
func usageStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// parse parses flags placed before or after the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printErr(w io.Writer, err error) {
	var ve *policies.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintln(w, p.String())
		}
		// Other joined errors (unreadable files) too.
		if s := strings.TrimSpace(strings.Replace(err.Error(), ve.Error(), "", 1)); s != "" {
			fmt.Fprintln(w, s)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// load reads a policy file (with extends resolved within its directory) or
// a directory (the team's policy).
func load(path, team string) (*policies.Policy, error) {
	p, _, err := loadPolicy(path, team)
	return p, err
}

// loadPolicy is load, and says whether the policy is the embedded default
// (policies.Default): that of a directory without a file for the team nor
// a default.yaml.
func loadPolicy(path, team string) (p *policies.Policy, embedded bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if st.IsDir() {
		set, err := policies.LoadDir(path)
		if err != nil {
			return nil, false, err
		}
		_, own := set.Teams[team]
		if !own && team != "" && team != policies.DefaultTeam {
			return nil, false, &policies.UnknownTeamError{Team: team, Known: set.Names()}
		}
		_, def := set.Teams[policies.DefaultTeam]
		return set.Policy(team), !own && !def, nil
	}
	if stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)); team != "" && team != stem {
		return nil, false, &policies.UnknownTeamError{Team: team, Known: []string{stem}}
	}
	p, err = policies.LoadFileExtendsIn(path, policyRoot(path))
	return p, false, err
}

// policyRoot is the policy directory a single file belongs to, for its
// extends paths to resolve within: the nearest directory above it (its
// own included) that holds a default.yaml, as a base in a subdirectory
// (bases/common.yaml extending ../default.yaml) has; else its own.
// The root is written as the user wrote path (pol/bases/.. for
// pol/bases/common.yaml), since the loader names files relative to it:
// an origin or a problem reads pol/default.yaml:3, not an absolute path.
func policyRoot(path string) string {
	dir := filepath.Dir(path)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	rel := dir
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, policies.DefaultTeam+".yaml")); err == nil && fi.Mode().IsRegular() {
			return filepath.Clean(rel)
		}
		up := filepath.Dir(d)
		if up == d {
			return dir
		}
		d, rel = up, filepath.Join(rel, "..")
	}
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pos, err := parse(fs, args)
	if err != nil || len(pos) == 0 {
		fmt.Fprint(stderr, usage)
		return usageStatus(err)
	}
	status := 0
	for _, path := range pos {
		st, err := os.Stat(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		if st.IsDir() {
			set, err := policies.LoadDir(path)
			if err != nil {
				printErr(stderr, err)
				status = 1
				continue
			}
			if len(set.Teams) == 0 {
				// A parent directory, an empty or mistyped mount: a
				// check that checked nothing must not pass.
				fmt.Fprintf(stderr, "no policy file (*.yaml, *.yml, *.json) in %s\n", path)
				status = 1
				continue
			}
			if problems := unservable(set); len(problems) > 0 {
				for _, pr := range problems {
					fmt.Fprintln(stderr, pr)
				}
				status = 1
				continue
			}
			fmt.Fprintf(stdout, "%s: %d policies ok (%s)\n", path, len(set.Teams), strings.Join(set.Names(), ", "))
			for _, name := range set.Names() {
				printWarnings(stdout, set.Policy(name))
			}
			continue
		}
		p, err := policies.LoadFileExtendsIn(path, policyRoot(path))
		if err != nil {
			printErr(stderr, err)
			status = 1
			continue
		}
		if pr := learnedWeightsProblem(p); pr != nil {
			fmt.Fprintln(stderr, pr)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
		printWarnings(stdout, p)
	}
	return status
}

// unservable lists what the loader accepts in set but building its teams'
// chains (llmwrap.Build, as serve and llmwrap.NewRegistry do) refuses: a
// routing.learned weights file that is missing or not a weights file. A
// check that passes must not name a directory the gateway refuses to serve.
func unservable(set *policies.Set) []*policies.Problem {
	var out []*policies.Problem
	seen := map[string]bool{} // a base's weights, once
	for _, name := range set.Names() {
		pr := learnedWeightsProblem(set.Policy(name))
		if pr == nil || seen[pr.String()] {
			continue
		}
		seen[pr.String()] = true
		out = append(out, pr)
	}
	return out
}

// learnedWeightsProblem reads p's routing.learned weights file as Build
// does (llmwrap.NewRules), and returns why it cannot, at the line of the
// file that names it; nil when p has no learned routing or its weights read.
func learnedWeightsProblem(p *policies.Policy) *policies.Problem {
	if p.Routing.Learned.Weights == "" {
		return nil
	}
	if _, err := llmwrap.NewRules(p); err != nil {
		pr := &policies.Problem{Path: "routing.learned.weights", Msg: err.Error()}
		for _, o := range p.Explain() {
			if o.Path == pr.Path {
				pr.File, pr.Line = o.File, o.Line
			}
		}
		return pr
	}
	return nil
}

// explainValueWidth is the widest value policy explain aligns origins
// after: a longer one (a match list) is written with its origin right
// after it, so it never pads every other line to its width.
const explainValueWidth = 40

func explain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	team := fs.String("team", "", "the team whose policy to explain (for a directory)")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 1 {
		fmt.Fprint(stderr, usage)
		return usageStatus(err)
	}
	path := pos[0]
	if st, err := os.Stat(path); err == nil && !st.IsDir() && *team != "" {
		// A file and a team: the team's file beside it, if there is one.
		for _, ext := range []string{".yaml", ".yml", ".json"} {
			if cand := filepath.Join(filepath.Dir(path), *team+ext); fileExists(cand) {
				path = cand
				break
			}
		}
	}
	p, embedded, err := loadPolicy(path, *team)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "# effective policy %q (team %q)\n", p.Name, *team)
	if embedded {
		// Its origins name the embedded file, which the directory lacks.
		fmt.Fprintf(stdout, "# %s has no default.yaml: this is the embedded default policy\n", path)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, o := range p.Explain() {
		from := "(default)"
		if o.File != "" {
			from = fmt.Sprintf("%s:%d", o.File, o.Line)
			if embedded {
				from = "embedded " + from
			}
		}
		if len(o.Value) > explainValueWidth {
			// Not a cell of the value column: its origin follows it.
			fmt.Fprintf(tw, "%s:\t%s  # %s\n", o.Path, o.Value, from)
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\t# %s\n", o.Path, o.Value, from)
	}
	tw.Flush()
	return 0
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func replay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	polPath := fs.String("policy", "", "policy file or directory (required)")
	team := fs.String("team", "", "team, when --policy is a directory and the trace has no team or several (else the trace's)")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (long traces on a terminal), always, never")
	runsPerDay := fs.Float64("runs-per-day", 0, "forecast a day, a month and the team budget's period at this many runs a day (the mean replayed run)")
	callsPerDay := fs.Float64("calls-per-day", 0, "forecast at this many calls a day (the mean replayed call)")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 1 || *polPath == "" {
		fmt.Fprint(stderr, usage)
		return usageStatus(err)
	}
	fo := observe.ForecastOptions{RunsPerDay: *runsPerDay, CallsPerDay: *callsPerDay}
	if !(fo.RunsPerDay >= 0) || !(fo.CallsPerDay >= 0) || math.IsInf(fo.RunsPerDay, 0) || math.IsInf(fo.CallsPerDay, 0) ||
		fo.RunsPerDay > 0 && fo.CallsPerDay > 0 {
		// (NaN and infinities too: found before the trace is replayed.)
		fmt.Fprintln(stderr, "tokenwise replay: --runs-per-day and --calls-per-day are finite rates a day, not negative, and not both")
		return 2
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	recs, err := observe.ReadTrace(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	p, err := loadReplayPolicy(*polPath, *team, recs)
	if err != nil {
		printErr(stderr, err)
		var many *manyTeamsError
		if errors.As(err, &many) {
			return 2
		}
		return 1
	}
	show := *progress == "always" || *progress == "auto" && len(recs) >= longTrace && isTerminal(stderr)
	bar := &progressBar{w: stderr}
	opts := observe.ReplayOptions{}
	if show {
		opts.Progress = bar.update
	}
	res, err := observe.Replay(context.Background(), p, recs, opts)
	if show {
		bar.done()
	}
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	printReplay(stdout, pos[0], p, res)
	fc, err := observe.ForecastReplay(p, recs, res, fo)
	switch {
	case errors.Is(err, observe.ErrNoRate):
		fmt.Fprintf(stdout, "\nforecast: %s; pass --runs-per-day N or --calls-per-day N to project a day and a month\n",
			strings.TrimPrefix(err.Error(), observe.ErrNoRate.Error()+": "))
	case err != nil:
		printErr(stderr, err)
		return 1
	default:
		printForecast(stdout, fc)
	}
	return 0
}

// loadReplayPolicy loads the policy a trace is replayed under: load's,
// and for a directory without team, that of the team the trace's calls
// name (the default policy when the directory has no file for it, as the
// gateway serves such a team); a *manyTeamsError when they name several.
func loadReplayPolicy(path, team string, recs []observe.Record) (*policies.Policy, error) {
	if st, err := os.Stat(path); team != "" || err != nil || !st.IsDir() {
		return load(path, team)
	}
	var teams []string
	for i := range recs {
		if t := recs[i].Team; t != "" && !slices.Contains(teams, t) {
			teams = append(teams, t)
		}
	}
	switch len(teams) {
	case 0:
		return load(path, "")
	case 1:
		p, err := load(path, teams[0])
		var unknown *policies.UnknownTeamError
		if errors.As(err, &unknown) {
			return load(path, "")
		}
		return p, err
	}
	slices.Sort(teams)
	return nil, &manyTeamsError{teams: teams}
}

// manyTeamsError: a trace of several teams replayed under a policy
// directory without --team.
type manyTeamsError struct{ teams []string }

func (e *manyTeamsError) Error() string {
	return fmt.Sprintf("tokenwise replay: the trace has calls of %d teams (%s): pass --team T to replay it under one's policy",
		len(e.teams), strings.Join(e.teams, ", "))
}

// printForecast writes the forecast section of a replay.
func printForecast(w io.Writer, f *observe.Forecast) {
	fmt.Fprintln(w)
	rate := fmt.Sprintf("%s %ss a day", formatCount(f.PerDay), f.Unit)
	if f.Span > 0 {
		rate = fmt.Sprintf("the trace's rate, %d %ss in %s: %s", f.Units, f.Unit, f.Span.Round(time.Minute), rate)
	}
	fmt.Fprintf(w, "forecast at %s (a %s: %s under the policy, %s recorded, the mean of %d):\n",
		rate, f.Unit, formatDollars(f.PerUnit), formatDollars(f.RecordedPerUnit), f.Units)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tunder the policy\trecorded\tdifference\ttokens")
	fmt.Fprintf(tw, "  a day\t%s\t%s\t%s\t%s\n", formatDollars(f.Day), formatDollars(f.RecordedDay),
		formatSigned(f.Day-f.RecordedDay), formatCount(f.DayTokens))
	fmt.Fprintf(tw, "  %d days\t%s\t%s\t%s\t%s\n", observe.ForecastDays, formatDollars(f.Month()), formatDollars(f.RecordedMonth()),
		formatSigned(f.Month()-f.RecordedMonth()), formatCount(f.DayTokens*observe.ForecastDays))
	tw.Flush()
	t := f.Team
	if t == nil {
		return
	}
	var limits []string
	if t.MaxUSD > 0 {
		limits = append(limits, t.MaxUSD.String())
	}
	if t.MaxTokens > 0 {
		limits = append(limits, formatCount(float64(t.MaxTokens))+" tokens")
	}
	period := string(t.Period)
	switch t.Period {
	case policies.PeriodRolling:
		period = "a rolling " + formatDays(t.Days)
	case policies.PeriodMonthly:
		period = fmt.Sprintf("monthly, taken as %d days", observe.ForecastDays)
	}
	fmt.Fprintf(w, "team budget (%s, %s): a period's traffic takes %.1f%% of it", period, strings.Join(limits, " and "), 100*t.Fraction)
	if t.RunsOutAfter == 0 {
		fmt.Fprintln(w, "; it lasts the period")
		return
	}
	then := "later calls are refused"
	switch t.OnExceed {
	case policies.OnExceedDowngrade:
		then = "later calls are downgraded to " + t.DowngradeTo
	case policies.OnExceedWarn:
		then = "later calls only warn"
	}
	fmt.Fprintf(w, ": it runs out %s into each period (on_exceed: %s: %s)\n", formatDays(t.RunsOutAfter.Hours()/24), onExceedName(t.OnExceed), then)
}

func onExceedName(o policies.OnExceed) string {
	if o == "" {
		return string(policies.OnExceedReject)
	}
	return string(o)
}

// formatDollars renders a projected amount: cents from a dollar up, four
// significant digits below.
func formatDollars(v float64) string {
	if math.Abs(v) >= 1 {
		cents := math.Round(v * 100)
		return "$" + formatCount(math.Trunc(cents/100)) + fmt.Sprintf(".%02d", int64(math.Mod(cents, 100)))
	}
	if v == 0 {
		return "$0.00"
	}
	d := strconv.FormatFloat(v, 'f', max(2, 4-int(math.Ceil(math.Log10(math.Abs(v))))), 64)
	if d = strings.TrimRight(d, "0"); len(d)-strings.IndexByte(d, '.') < 3 {
		d += strings.Repeat("0", 3-(len(d)-strings.IndexByte(d, '.')))
	}
	return "$" + d
}

func formatSigned(v float64) string {
	if v < 0 {
		return "-" + formatDollars(-v)
	}
	return "+" + formatDollars(v)
}

// formatCount renders v with thousands separators, with two decimals when
// it is not a whole number.
func formatCount(v float64) string {
	whole := math.Trunc(v)
	frac := ""
	if v != whole {
		s := strconv.FormatFloat(v-whole, 'f', 2, 64)
		if s == "1.00" {
			whole++
		} else if s != "0.00" {
			frac = s[1:]
		}
	}
	d := strconv.FormatFloat(whole, 'f', 0, 64)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String() + frac
}

// formatDays renders a length in days in the largest unit that reads well.
func formatDays(days float64) string {
	switch h := days * 24; {
	case days >= 2:
		return strconv.FormatFloat(math.Round(days*10)/10, 'f', -1, 64) + " days"
	case h >= 2:
		return strconv.FormatFloat(math.Round(h*10)/10, 'f', -1, 64) + " hours"
	case math.Round(h*60) == 1:
		return "1 minute"
	case h*60 >= 1:
		return strconv.FormatFloat(math.Round(h*60), 'f', -1, 64) + " minutes"
	default:
		return "under a minute"
	}
}

// longTrace is the number of records from which auto shows a progress bar.
const longTrace = 200

func printReplay(w io.Writer, trace string, p *policies.Policy, res *observe.ReplayResult) {
	fmt.Fprintf(w, "replayed %d calls of %s under policy %q\n", res.Calls, trace, p.Name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tcalls\tfailed\tcache hits\ttokens\tcost\tsaved")
	for _, r := range res.Runs {
		t := r.Totals()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.ID(), t.Calls, t.Failed, t.CacheHits, t.Usage.Total(),
			middleware.FormatPico(t.CostPico), middleware.FormatPico(t.SavedPico))
	}
	tw.Flush()
	// Per model, over every run.
	byModel := map[string]middleware.ModelTotals{}
	for _, r := range res.Runs {
		for m, mt := range r.Totals().ByModel {
			sum := byModel[m]
			sum.Calls += mt.Calls
			sum.CacheHits += mt.CacheHits
			sum.Usage = sum.Usage.Add(mt.Usage)
			sum.CostPico += mt.CostPico
			sum.SavedPico += mt.SavedPico
			byModel[m] = sum
		}
	}
	if len(byModel) > 0 {
		models := make([]string, 0, len(byModel))
		for m := range byModel {
			models = append(models, m)
		}
		slices.Sort(models)
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "model\tcalls\tcache hits\tin\tout\tcost\tsaved")
		for _, m := range models {
			mt := byModel[m]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", m, mt.Calls, mt.CacheHits, mt.Usage.InputTokens, mt.Usage.OutputTokens,
				middleware.FormatPico(mt.CostPico), middleware.FormatPico(mt.SavedPico))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "recorded cost:   %s\n", middleware.FormatPico(res.RecordedCost))
	fmt.Fprintf(w, "cost under policy: %s\n", middleware.FormatPico(res.CostPico))
	fmt.Fprintf(w, "saved by cache:  %s (%d hits)\n", middleware.FormatPico(res.SavedPico), res.CacheHits)
	if res.RecordedCost > 0 {
		fmt.Fprintf(w, "difference:      %s (%.1f%% of the recorded cost)\n",
			middleware.FormatPico(res.CostPico-res.RecordedCost), 100*float64(res.CostPico-res.RecordedCost)/float64(res.RecordedCost))
	}
	if res.Failed > 0 {
		fmt.Fprintf(w, "failed calls:    %d (refused by the policy or not recorded)\n", res.Failed)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "[#####.....]  512/1024" on one line, redrawn at most
// once per percent.
type progressBar struct {
	w    io.Writer
	last int
}

func (b *progressBar) update(done, total int) {
	if total == 0 {
		return
	}
	pct := done * 100 / total
	if pct == b.last && done != total {
		return
	}
	b.last = pct
	const width = 30
	n := done * width / total
	fmt.Fprintf(b.w, "\r[%s%s] %3d%% %d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), pct, done, total)
}

func (b *progressBar) done() { fmt.Fprintln(b.w) }

// printWarnings prints what a valid policy will do that its reader may not
// expect (policies.Policy.Warnings); they do not fail the check.
func printWarnings(w io.Writer, p *policies.Policy) {
	for _, pr := range p.Warnings() {
		fmt.Fprintf(w, "warning: %s\n", pr)
	}
}
