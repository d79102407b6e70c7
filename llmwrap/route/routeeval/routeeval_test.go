package routeeval_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/route/routeeval"
	"github.com/tokenwise/tokenwise/policies"
)

var (
	trainSet   = routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 1})
	testSet    = routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 2})
	shiftedSet = routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 3, Shifted: true})
)

func mustEval(t *testing.T, ex []routeeval.Example, sc routeeval.Scorer, cfg routeeval.Config) *routeeval.Report {
	t.Helper()
	r, err := routeeval.Evaluate(ex, sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// randomScores is a scorer that knows nothing.
type randomScores struct{ seed uint64 }

func (r randomScores) Name() string { return "random scores" }
func (r randomScores) Scores(ex []routeeval.Example) ([]float64, error) {
	rng := rand.New(rand.NewPCG(r.seed, 9))
	s := make([]float64, len(ex))
	for i := range s {
		s[i] = rng.Float64()
	}
	return s, nil
}

// The random band is centred on APGR 0.5 with a narrow 5–95 % band, and
// the oracle is at least as good as every scorer at every fraction of
// strong calls.
func TestRouteEvalRandomBand(t *testing.T) {
	t.Parallel()
	for _, data := range [][]routeeval.Example{testSet, shiftedSet} {
		r := mustEval(t, data, routeeval.Length{}, routeeval.Config{Seed: 7})
		b := r.Random
		if math.Abs(b.APGR-0.5) > 0.01 {
			t.Errorf("random APGR %.4f, want 0.5 ± 0.01", b.APGR)
		}
		if !(b.APGRLo < 0.5 && 0.5 < b.APGRHi) || b.APGRHi-b.APGRLo > 0.1 {
			t.Errorf("random APGR band [%.3f, %.3f] does not hold 0.5 or is too wide", b.APGRLo, b.APGRHi)
		}
		for i, f := range b.F {
			// The expected accuracy of a random router is linear in f.
			want := r.Curve.AccWeak + f*(r.Curve.AccStrong-r.Curve.AccWeak)
			if math.Abs(b.Mean[i]-want) > 0.01 || b.Lo[i] > b.Mean[i]+1e-12 || b.Hi[i] < b.Mean[i]-1e-12 {
				t.Fatalf("band at %.2f: mean %.4f [%.4f, %.4f], expected mean %.4f", f, b.Mean[i], b.Lo[i], b.Hi[i], want)
			}
		}
		// The oracle dominates every scorer, pointwise.
		scorers := []routeeval.Scorer{routeeval.Length{}, routeeval.CategoryBaseline{}}
		for s := range uint64(20) {
			scorers = append(scorers, randomScores{s})
		}
		for _, sc := range scorers {
			rr := mustEval(t, data, sc, routeeval.Config{RandomRouters: 10})
			if rr.APGR > rr.OracleAPGR+1e-12 {
				t.Errorf("%s: APGR %.4f above the oracle's %.4f", sc.Name(), rr.APGR, rr.OracleAPGR)
			}
			for f := 0.0; f <= 1; f += 0.01 {
				if rr.Curve.At(f) > rr.Oracle.At(f)+1e-12 {
					t.Fatalf("%s: accuracy %.4f above the oracle's %.4f at %.2f", sc.Name(), rr.Curve.At(f), rr.Oracle.At(f), f)
				}
			}
		}
	}
}

const keywordPolicy = `version: 1
routing:
  default: gpt-4o
  rules:
    - name: easy-by-keyword
      when: {keywords: [simple, quick, define, briefly]}
      model: gpt-4o-mini
`

// hardWordPolicy sends queries with words of hard questions to the strong
// model: rules can work when they key on what matters.
const hardWordPolicy = `version: 1
routing:
  default: gpt-4o-mini
  rules:
    - name: hard-words
      when: {keywords: [isomorphism, eigenvalue, homomorphism, galois, quotient, lagrangian, tensor, entropy, estoppel, tort, certiorari]}
      model: gpt-4o
`

func policyScorer(t *testing.T, yaml string) *routeeval.Policy {
	t.Helper()
	p, err := policies.LoadBytes([]byte(yaml), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := llmwrap.NewRules(p)
	if err != nil {
		t.Fatal(err)
	}
	return &routeeval.Policy{Router: rules, Strong: "gpt-4o", Label: "p.yaml"}
}

// A first-match rule policy is one operating point: its curve has a
// single interior point, where the report puts it, compared with random
// routers sending as many calls to the strong model. Keyword rules that
// ignore difficulty fall inside the random band; rules on the words of
// hard questions rise above it.
func TestRouteEvalRulesAreOneOperatingPoint(t *testing.T) {
	t.Parallel()
	prices, err := routeeval.PricesFor(nil, "gpt-4o", "gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		inside     bool
	}{{"keywords", keywordPolicy, true}, {"hard words", hardWordPolicy, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ps := policyScorer(t, tc.yaml)
			r := mustEval(t, testSet, ps, routeeval.Config{Prices: prices})
			if r.Rule == nil {
				t.Fatal("no rule point")
			}
			strong := 0
			for _, d := range ps.Decisions {
				if d {
					strong++
				}
			}
			rp := r.Rule
			if want := float64(strong) / float64(len(testSet)); rp.Strong != want || rp.Strong == 0 || rp.Strong == 1 {
				t.Fatalf("rule point at %.3f strong, decisions say %.3f", rp.Strong, want)
			}
			if pts := r.Curve.Points; len(pts) != 3 || pts[1].F != rp.Strong || math.Abs(pts[1].Acc-rp.Acc) > 1e-9 {
				t.Fatalf("curve %v is not the rule's single operating point %+v", pts, rp.Operating)
			}
			if rp.Inside() != tc.inside {
				t.Fatalf("rule point %.4f at %.3f strong: inside the band [%.4f, %.4f] = %v, want %v",
					rp.Acc, rp.Strong, rp.RandomLo, rp.RandomHi, rp.Inside(), tc.inside)
			}
			if rp.CostPico <= 0 || rp.CostPico >= rp.AllStrongPico || rp.Saving() <= 0 {
				t.Fatalf("rule point costs %d of %d", rp.CostPico, rp.AllStrongPico)
			}
			var out bytes.Buffer
			if err := routeeval.WriteText(&out, "test.jsonl", r); err != nil {
				t.Fatal(err)
			}
			want := "INSIDE the random band"
			if !tc.inside {
				want = "above the random band"
			}
			if !strings.Contains(out.String(), want) {
				t.Fatalf("report lacks %q:\n%s", want, out.String())
			}
		})
	}
}

// A learned scorer is clearly better than random on the data it was
// trained on, on held-out data of the same domain, and its cross-validated
// estimate is close to the held-out figure. On another domain it is not.
func TestLearnedScorerMatchesTrainingOnSameData(t *testing.T) {
	t.Parallel()
	m, rep, err := routeeval.Train(trainSet, routeeval.TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sc := routeeval.Learned{Model: m, Label: "synthetic"}
	same := mustEval(t, trainSet, sc, routeeval.Config{})
	held := mustEval(t, testSet, sc, routeeval.Config{})
	other := mustEval(t, shiftedSet, sc, routeeval.Config{})
	t.Logf("APGR on training data %.3f, held out %.3f (out-of-fold estimate %.3f), other domain %.3f; random 95th percentile %.3f",
		same.APGR, held.APGR, rep.OOFAPGR, other.APGR, held.Random.APGRHi)
	if same.APGR < same.Random.APGRHi+0.1 {
		t.Errorf("APGR on its training data %.3f, not clearly above random (95th percentile %.3f)", same.APGR, same.Random.APGRHi)
	}
	if held.APGR < held.Random.APGRHi+0.05 {
		t.Errorf("held-out APGR %.3f, not clearly above random (95th percentile %.3f)", held.APGR, held.Random.APGRHi)
	}
	if math.Abs(rep.OOFAPGR-held.APGR) > 0.05 {
		t.Errorf("out-of-fold APGR %.3f far from the held-out %.3f", rep.OOFAPGR, held.APGR)
	}
	if other.APGR > other.Random.APGRHi {
		t.Errorf("APGR %.3f on another domain, above random: the synthetic domains share signal", other.APGR)
	}
	// Keyword rules and length do not beat random on the same data.
	if r := mustEval(t, testSet, policyScorer(t, keywordPolicy), routeeval.Config{}); r.APGR > r.Random.APGRHi {
		t.Errorf("keyword rules APGR %.3f above random", r.APGR)
	}
	if held.APGR <= mustEval(t, testSet, routeeval.CategoryBaseline{}, routeeval.Config{}).APGR {
		t.Errorf("learned scorer no better than the category prior")
	}
	// The calibrated threshold reaches the target out of fold.
	if rep.OOFAtTarget.PGR < rep.Target {
		t.Errorf("calibrated threshold reaches PGR %.3f < target %.2f", rep.OOFAtTarget.PGR, rep.Target)
	}
}

// A threshold fitted on one file and applied to another is reported, and
// flagged when it does not carry over.
func TestThresholdTransferIsReported(t *testing.T) {
	t.Parallel()
	m, _, err := routeeval.Train(trainSet, routeeval.TrainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sc := routeeval.Learned{Model: m, Label: "synthetic"}
	cfg := routeeval.Config{Target: 0.8}
	// Same domain: the threshold carries over.
	r := mustEval(t, testSet, sc, cfg)
	sameDomain := routeeval.Synthetic(routeeval.SynthConfig{N: 1000, Seed: 4})
	if err := routeeval.EvaluateTransfer(r, sameDomain, "same.jsonl", sc, cfg); err != nil {
		t.Fatal(err)
	}
	tr := r.Transfer
	if tr.Fitted != r.AtTarget || tr.There.Threshold != r.AtTarget.Threshold {
		t.Fatalf("transfer does not use the fitted threshold: %+v vs %+v", tr, r.AtTarget)
	}
	if !tr.Transfers(cfg.Target) {
		t.Errorf("same-domain transfer flagged as failing: %+v", tr)
	}
	// Another domain: it does not.
	r = mustEval(t, testSet, sc, cfg)
	if err := routeeval.EvaluateTransfer(r, shiftedSet, "shifted.jsonl", sc, cfg); err != nil {
		t.Fatal(err)
	}
	tr = r.Transfer
	if tr.Transfers(cfg.Target) {
		t.Errorf("cross-domain transfer not flagged: %+v", tr)
	}
	if tr.There.Strong < tr.Fitted.Strong+0.1 {
		t.Errorf("threshold sends %.1f%% strong on the other domain vs %.1f%% where fitted; expected a clear shift", 100*tr.There.Strong, 100*tr.Fitted.Strong)
	}
	var out bytes.Buffer
	if err := routeeval.WriteText(&out, "test.jsonl", r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"transfer to shifted.jsonl", "does NOT transfer", "itself needs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// Curve facts on arbitrary scores: endpoints, monotone F, APGR of a
// constant scorer is 0.5, CPT is where the PGR is reached, and the fitted
// threshold reaches the target.
func TestCurveProperties(t *testing.T) {
	t.Parallel()
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 2))
		n := 5 + rng.IntN(200)
		ex := routeeval.Synthetic(routeeval.SynthConfig{N: n, Seed: seed})
		w, s := 0.0, 0.0
		for i := range ex {
			w += ex[i].Weak
			s += ex[i].Strong
		}
		if s <= w {
			continue
		}
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = float64(rng.IntN(5)) // many ties
		}
		c := routeeval.CurveOf(ex, scores)
		pts := c.Points
		if pts[0].F != 0 || pts[len(pts)-1].F != 1 || pts[0].Acc != c.AccWeak || pts[len(pts)-1].Acc != c.AccStrong {
			t.Fatalf("seed %d: curve ends %v %v", seed, pts[0], pts[len(pts)-1])
		}
		for i := 1; i < len(pts); i++ {
			if pts[i].F <= pts[i-1].F {
				t.Fatalf("seed %d: F not increasing", seed)
			}
		}
		constant := routeeval.CurveOf(ex, make([]float64, n))
		if a := constant.APGR(); math.Abs(a-0.5) > 1e-9 {
			t.Fatalf("seed %d: constant scorer APGR %v", seed, a)
		}
		for _, target := range []float64{0.3, 0.5, 0.8, 0.9} {
			f, ok := c.CPT(target)
			if !ok {
				t.Fatalf("seed %d: CPT(%v) never reached (PGR reaches 1 at f=1)", seed, target)
			}
			if p := c.PGR(c.At(f)); math.Abs(p-target) > 1e-9 && f > 0 {
				t.Fatalf("seed %d: PGR %v at CPT(%v) = %v", seed, p, target, f)
			}
			th := routeeval.FitThreshold(ex, scores, target)
			op := routeeval.Apply(ex, scores, th, nil)
			if op.PGR < target-1e-9 {
				t.Fatalf("seed %d: fitted threshold reaches PGR %v < %v", seed, op.PGR, target)
			}
			if op.Strong+1e-9 < f {
				t.Fatalf("seed %d: threshold point at %v strong, below CPT %v", seed, op.Strong, f)
			}
		}
	}
}

func TestReadReportsBadLines(t *testing.T) {
	t.Parallel()
	good := `{"prompt":"hi","weak_correct":true,"strong_correct":true}`
	for _, tc := range []struct{ line, want string }{
		{`not json`, "not a JSON object"},
		{`{"weak_correct":true,"strong_correct":true}`, `no "prompt" nor "messages"`},
		{`{"prompt":"x","messages":[{"role":"user","content":"x"}],"weak_correct":true,"strong_correct":true}`, "both"},
		{`{"prompt":"x","strong_correct":true}`, "no weak_correct nor weak_score"},
		{`{"prompt":"x","weak_correct":true,"weak_score":1,"strong_correct":true}`, "both weak_correct and weak_score"},
		{`{"prompt":"x","weak_score":1.5,"strong_correct":true}`, "weak_score 1.5 not in [0,1]"},
		{`{"messages":[{"role":"system","content":"x"}],"weak_correct":true,"strong_correct":true}`, "no user message"},
		{`{"messages":[{"role":"user","content":7}],"weak_correct":true,"strong_correct":true}`, "messages[0].content"},
	} {
		_, err := routeeval.Read(strings.NewReader(good + "\n\n" + tc.line + "\n"))
		var le *routeeval.LineError
		if !errors.Is(err, routeeval.ErrData) || !errors.As(err, &le) || le.Line != 3 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want line 3 with %q", tc.line, err, tc.want)
		}
	}
	if _, err := routeeval.Read(strings.NewReader("\n\n")); !errors.Is(err, routeeval.ErrData) {
		t.Errorf("empty file: %v", err)
	}
	ex, err := routeeval.Read(strings.NewReader(`{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},` +
		`{"role":"user","content":[{"type":"text","text":"second"},{"type":"image_url"}]}],"weak_score":0.25,"strong_score":0.75,"category":"c"}`))
	if err != nil || len(ex) != 1 || ex[0].Text != "second" || ex[0].Gain() != 0.5 || ex[0].Category != "c" || len(ex[0].Messages) != 3 {
		t.Fatalf("messages line read as %+v, %v", ex, err)
	}
}

func TestNoGapIsAnError(t *testing.T) {
	t.Parallel()
	ex, err := routeeval.Read(strings.NewReader(`{"prompt":"a","weak_correct":true,"strong_correct":false}` + "\n" +
		`{"prompt":"b","weak_correct":true,"strong_correct":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routeeval.Evaluate(ex, routeeval.Length{}, routeeval.Config{}); !errors.Is(err, routeeval.ErrNoGap) {
		t.Fatalf("err %v", err)
	}
	if _, _, err := routeeval.Train(ex, routeeval.TrainConfig{}); !errors.Is(err, routeeval.ErrTooFewExamples) {
		t.Fatalf("train err %v", err)
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	t.Parallel()
	r := mustEval(t, testSet, policyScorer(t, keywordPolicy), routeeval.Config{})
	var b bytes.Buffer
	if err := routeeval.WriteSVG(&b, "keywords <&>", r); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	elems := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems[se.Name.Local]++
		}
	}
	// Band, random mean, oracle, curve, two points.
	if elems["svg"] != 1 || elems["polygon"] != 1 || elems["polyline"] != 3 || elems["circle"] != 2 {
		t.Fatalf("SVG elements %v", elems)
	}
}
