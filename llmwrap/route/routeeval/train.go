package routeeval

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/tokenwise/tokenwise/llmwrap/route/learn"
)

// ErrTooFewExamples is returned by Train when the data cannot train a
// model: too few examples, or a label that is always or never true.
var ErrTooFewExamples = errors.New("routeeval: too few examples to train")

// TrainConfig configures Train. The zero value is usable.
type TrainConfig struct {
	// Bits: 2^Bits hashed buckets. Zero: 16 (64 KiB of weights).
	Bits uint8
	// Ngrams: 1 (words) or 2 (words and word pairs). Zero: 2.
	Ngrams uint8
	// Label is what the model predicts. Zero: learn.LabelOnlyStrong.
	Label learn.Label
	// Folds of the cross-validation. Zero: 5.
	Folds int
	// Lambdas are the L2 strengths tried. Empty: 1e-4, 1e-3, 1e-2, 3e-2.
	Lambdas []float64
	// Epochs of stochastic gradient descent. Zero: 15.
	Epochs int
	// Target is the PGR the threshold is calibrated for. Zero: 0.9.
	Target float64
	// Seed seeds the folds, the example order and the hash.
	Seed uint64
}

// LambdaScore is the cross-validated APGR of one L2 strength.
type LambdaScore struct {
	Lambda, APGR float64
}

// TrainReport tells how a model was chosen.
type TrainReport struct {
	N, Positives int
	CV           []LambdaScore
	Lambda       float64 // chosen
	// OOFAPGR is the APGR of the out-of-fold scores of the chosen lambda:
	// an honest in-domain estimate.
	OOFAPGR float64
	// Threshold is calibrated on the out-of-fold scores for Target.
	Threshold, Target float64
	// OOFAtTarget is the threshold's operating point on the out-of-fold
	// scores.
	OOFAtTarget Operating
}

func (c TrainConfig) withDefaults() TrainConfig {
	if c.Bits == 0 {
		c.Bits = 16
	}
	if c.Ngrams == 0 {
		c.Ngrams = 2
	}
	if c.Label == 0 {
		c.Label = learn.LabelOnlyStrong
	}
	if c.Folds <= 1 {
		c.Folds = 5
	}
	if len(c.Lambdas) == 0 {
		c.Lambdas = []float64{1e-4, 1e-3, 1e-2, 3e-2}
	}
	if c.Epochs <= 0 {
		c.Epochs = 15
	}
	if c.Target <= 0 {
		c.Target = 0.9
	}
	c.Target = min(c.Target, 1)
	return c
}

// labelOf is the training label of an example.
func labelOf(e *Example, l learn.Label) float64 {
	switch l {
	case learn.LabelStrongBetter:
		if e.Strong > e.Weak {
			return 1
		}
	default:
		if e.Strong >= 0.5 && e.Weak < 0.5 {
			return 1
		}
	}
	return 0
}

// Train fits a learned scorer on labelled examples: hashed word uni- and
// bigrams, logistic regression by stochastic gradient descent with an L2
// strength chosen by k-fold cross-validation (the highest mean held-out
// APGR), and a threshold calibrated for cfg.Target on the out-of-fold
// scores. The final model is fitted on every example and int8-quantised.
func Train(ex []Example, cfg TrainConfig) (*learn.Model, *TrainReport, error) {
	cfg = cfg.withDefaults()
	if cfg.Bits < 8 || cfg.Bits > 20 || cfg.Ngrams > 2 {
		return nil, nil, fmt.Errorf("routeeval: bits %d not in [8,20] or ngrams %d not 1 or 2", cfg.Bits, cfg.Ngrams)
	}
	rep := &TrainReport{N: len(ex), Target: cfg.Target}
	y := make([]float64, len(ex))
	for i := range ex {
		y[i] = labelOf(&ex[i], cfg.Label)
		rep.Positives += int(y[i])
	}
	if len(ex) < 4*cfg.Folds || rep.Positives < cfg.Folds || len(ex)-rep.Positives < cfg.Folds {
		return nil, nil, fmt.Errorf("%w: %d examples, %d with label %s (need %d examples and %d of each label)",
			ErrTooFewExamples, len(ex), rep.Positives, cfg.Label, 4*cfg.Folds, cfg.Folds)
	}
	if w, s := baseline(ex); s <= w {
		return nil, nil, fmt.Errorf("%w (weak %.3f, strong %.3f)", ErrNoGap, w, s)
	}
	seed := cfg.Seed ^ 0x7a3f1e5d
	feats := make([][]uint32, len(ex))
	for i := range ex {
		feats[i] = learn.AppendBuckets(nil, ex[i].Text, cfg.Bits, cfg.Ngrams, seed, learn.DefaultMaxBytes)
	}
	fold := folds(len(ex), cfg.Folds, cfg.Seed)
	dim := 1 << cfg.Bits
	var bestOOF []float64
	rep.CV = make([]LambdaScore, len(cfg.Lambdas))
	for li, lambda := range cfg.Lambdas {
		oof := make([]float64, len(ex))
		var sum float64
		var used int
		for f := range cfg.Folds {
			var train, test []int
			for i := range ex {
				if fold[i] == f {
					test = append(test, i)
				} else {
					train = append(train, i)
				}
			}
			w, b := fit(feats, y, train, dim, lambda, cfg.Epochs, cfg.Seed+uint64(f))
			sub := make([]Example, len(test))
			sc := make([]float64, len(test))
			for j, i := range test {
				oof[i] = predict(w, b, feats[i])
				sub[j], sc[j] = ex[i], oof[i]
			}
			if wa, sa := baseline(sub); sa > wa {
				c := CurveOf(sub, sc)
				sum += c.APGR()
				used++
			}
		}
		rep.CV[li] = LambdaScore{lambda, sum / float64(max(used, 1))}
		if bestOOF == nil || rep.CV[li].APGR > rep.CV[indexOf(rep.CV, rep.Lambda)].APGR {
			rep.Lambda, bestOOF = lambda, oof
		}
	}
	c := CurveOf(ex, bestOOF)
	rep.OOFAPGR = c.APGR()
	rep.Threshold = FitThreshold(ex, bestOOF, cfg.Target)
	if math.IsInf(rep.Threshold, 1) {
		rep.Threshold = 1 // the weak model alone reaches the target
	}
	rep.OOFAtTarget = Apply(ex, bestOOF, rep.Threshold, nil)
	all := make([]int, len(ex))
	for i := range all {
		all[i] = i
	}
	w, b := fit(feats, y, all, dim, rep.Lambda, cfg.Epochs, cfg.Seed)
	q, scale := learn.Quantise(w)
	m := &learn.Model{Bits: cfg.Bits, Ngrams: cfg.Ngrams, Seed: seed, Scale: scale, Bias: float32(b),
		Threshold: float32(rep.Threshold), Target: float32(cfg.Target), Label: cfg.Label, W: q}
	if err := m.Check(); err != nil {
		return nil, nil, err
	}
	return m, rep, nil
}

func indexOf(cv []LambdaScore, lambda float64) int {
	for i := range cv {
		if cv[i].Lambda == lambda {
			return i
		}
	}
	return 0
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// predict is the model's score of one example's features, as
// learn.Model.Score computes it (unquantised).
func predict(w []float64, b float64, f []uint32) float64 {
	if len(f) == 0 {
		return sigmoid(b)
	}
	var s float64
	for _, j := range f {
		s += w[j]
	}
	return sigmoid(b + s/math.Sqrt(float64(len(f))))
}

// fit runs SGD on the logistic loss with L2 strength lambda over the
// examples idx, in a seeded random order each epoch. The L2 shrinkage is
// applied lazily: the weights are scale × v.
func fit(feats [][]uint32, y []float64, idx []int, dim int, lambda float64, epochs int, seed uint64) ([]float64, float64) {
	v := make([]float64, dim)
	scale, b := 1.0, 0.0
	rng := rand.New(rand.NewPCG(seed, 0xf17))
	order := append([]int(nil), idx...)
	const lr0 = 0.5
	for ep := range epochs {
		lr := lr0 / math.Sqrt(1+float64(ep))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			f := feats[i]
			inv := 0.0
			z := b
			if len(f) > 0 {
				inv = 1 / math.Sqrt(float64(len(f)))
				var s float64
				for _, j := range f {
					s += v[j]
				}
				z += scale * s * inv
			}
			g := sigmoid(z) - y[i]
			scale *= 1 - lr*lambda
			if scale < 1e-6 {
				for j := range v {
					v[j] *= scale
				}
				scale = 1
			}
			step := lr * g * inv / scale
			for _, j := range f {
				v[j] -= step
			}
			b -= lr * g
		}
	}
	for j := range v {
		v[j] *= scale
	}
	return v, b
}
