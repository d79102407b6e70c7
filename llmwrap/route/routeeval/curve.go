package routeeval

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Point is one operating point of a router: the fraction F of calls sent
// to the strong model and the mean quality Acc of the answers.
type Point struct {
	F, Acc float64
}

// Curve is the quality of a scorer's routers as a function of the fraction
// of calls sent to the strong model: the top-f by score go to the strong
// model. Points are the realisable operating points (a threshold between
// two distinct scores), from (0, AccWeak) to (1, AccStrong); between two
// of them the curve is linear: tied scores are broken at random, and the
// line is the expected quality.
type Curve struct {
	AccWeak, AccStrong float64
	Points             []Point
	// Thresholds[i] is the score threshold of Points[i]: a call goes to
	// the strong model when its score >= Thresholds[i]. +Inf at F = 0.
	Thresholds []float64
}

// baseline returns the mean quality of the weak and of the strong model.
func baseline(ex []Example) (weak, strong float64) {
	for i := range ex {
		weak += ex[i].Weak
		strong += ex[i].Strong
	}
	n := float64(len(ex))
	return weak / n, strong / n
}

// CurveOf returns the curve of scores (scores[i] scores ex[i]; higher:
// more in need of the strong model).
func CurveOf(ex []Example, scores []float64) Curve {
	w, s := baseline(ex)
	c := Curve{AccWeak: w, AccStrong: s}
	n := len(ex)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	c.Points = append(c.Points, Point{0, w})
	c.Thresholds = append(c.Thresholds, math.Inf(1))
	acc := w
	for k := 0; k < n; {
		j := k
		for j < n && scores[order[j]] == scores[order[k]] {
			acc += ex[order[j]].Gain() / float64(n)
			j++
		}
		c.Points = append(c.Points, Point{float64(j) / float64(n), acc})
		c.Thresholds = append(c.Thresholds, scores[order[k]])
		k = j
	}
	c.Points[len(c.Points)-1].Acc = s // no rounding drift at the end
	return c
}

// PGR is the performance gap recovered by quality acc: (acc − weak) /
// (strong − weak).
func (c *Curve) PGR(acc float64) float64 { return (acc - c.AccWeak) / (c.AccStrong - c.AccWeak) }

// At returns the expected quality with a fraction f of calls strong.
func (c *Curve) At(f float64) float64 { return interp(c.Points, f) }

func interp(pts []Point, f float64) float64 {
	i, _ := slices.BinarySearchFunc(pts, f, func(p Point, f float64) int { return cmp.Compare(p.F, f) })
	if i >= len(pts) {
		return pts[len(pts)-1].Acc
	}
	if pts[i].F == f || i == 0 {
		return pts[i].Acc
	}
	a, b := pts[i-1], pts[i]
	return a.Acc + (b.Acc-a.Acc)*(f-a.F)/(b.F-a.F)
}

// APGR is the area under the PGR curve over f in [0,1] (RouteLLM's
// average performance gap recovered): 0.5 for a random router, 1 for a
// router as good as the strong model at no cost.
func (c *Curve) APGR() float64 {
	var area float64
	for i := 1; i < len(c.Points); i++ {
		a, b := c.Points[i-1], c.Points[i]
		area += (b.F - a.F) * (c.PGR(a.Acc) + c.PGR(b.Acc)) / 2
	}
	return area
}

// CPT is the call-performance threshold: the smallest fraction of strong
// calls at which the curve reaches a PGR of pgr (false if never).
func (c *Curve) CPT(pgr float64) (float64, bool) {
	const eps = 1e-12
	pts := c.Points
	if c.PGR(pts[0].Acc) >= pgr-eps {
		return 0, true
	}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		pa, pb := c.PGR(a.Acc), c.PGR(b.Acc)
		if pb >= pgr-eps {
			if pb == pa {
				return b.F, true
			}
			return a.F + (b.F-a.F)*(pgr-pa)/(pb-pa), true
		}
	}
	return 1, false
}

// Band is the quality of random routers: at each fraction F of strong
// calls, their mean and their 5th and 95th percentiles.
type Band struct {
	Routers        int
	F              []float64
	Mean, Lo, Hi   []float64
	APGR           float64 // mean APGR of the random routers
	APGRLo, APGRHi float64 // its 5th and 95th percentiles
}

// RandomBand routes ex with n seeded random routers (each a random order
// of the calls: the top-f go to the strong model) and returns their band
// at every percent of strong calls.
func RandomBand(ex []Example, n int, seed uint64) Band {
	const steps = 100
	w, s := baseline(ex)
	gap := s - w
	size := len(ex)
	b := Band{Routers: n, F: make([]float64, steps+1), Mean: make([]float64, steps+1),
		Lo: make([]float64, steps+1), Hi: make([]float64, steps+1)}
	at := make([][]float64, steps+1)
	for j := range at {
		b.F[j] = float64(j) / steps
		at[j] = make([]float64, n)
	}
	apgr := make([]float64, n)
	cum := make([]float64, size+1)
	for r := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(r)))
		perm := rng.Perm(size)
		cum[0] = w
		area := 0.0
		for k, i := range perm {
			cum[k+1] = cum[k] + ex[i].Gain()/float64(size)
			if gap > 0 {
				area += ((cum[k]-w)/gap + (cum[k+1]-w)/gap) / 2 / float64(size)
			}
		}
		apgr[r] = area
		for j := range at {
			x := b.F[j] * float64(size)
			k := int(math.Floor(x))
			if k >= size {
				at[j][r] = cum[size]
				continue
			}
			at[j][r] = cum[k] + (cum[k+1]-cum[k])*(x-float64(k))
		}
	}
	for j := range at {
		b.Mean[j], b.Lo[j], b.Hi[j] = summarise(at[j])
	}
	b.APGR, b.APGRLo, b.APGRHi = summarise(apgr)
	return b
}

// summarise returns the mean and the 5th and 95th percentiles of v
// (sorted in place).
func summarise(v []float64) (mean, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	slices.Sort(v)
	return mean, quantile(v, 0.05), quantile(v, 0.95)
}

func quantile(sorted []float64, q float64) float64 {
	x := q * float64(len(sorted)-1)
	i := int(math.Floor(x))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (sorted[i+1]-sorted[i])*(x-float64(i))
}

// At returns the band's mean, 5th and 95th percentile at fraction f.
func (b *Band) At(f float64) (mean, lo, hi float64) {
	pts := func(v []float64) []Point {
		p := make([]Point, len(v))
		for i := range v {
			p[i] = Point{b.F[i], v[i]}
		}
		return p
	}
	return interp(pts(b.Mean), f), interp(pts(b.Lo), f), interp(pts(b.Hi), f)
}

// OracleScores scores each example by its gain (strong − weak): routing
// the top-f by gain is the best any router can do at every f.
func OracleScores(ex []Example) []float64 {
	s := make([]float64, len(ex))
	for i := range ex {
		s[i] = ex[i].Gain()
	}
	return s
}
