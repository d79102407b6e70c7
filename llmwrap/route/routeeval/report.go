package routeeval

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/tokenwise/tokenwise/policies"
)

func pct(f float64) string {
	if math.IsNaN(f) {
		return "never"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

func threshold(t float64) string {
	switch {
	case math.IsInf(t, 1):
		return "none (all weak)"
	case math.IsNaN(t):
		return "-"
	}
	return fmt.Sprintf("%.4g", t)
}

// WriteText writes the report as text: the header, the curve at every 10 %
// of strong calls beside the random band and the oracle, APGR and CPTs,
// the operating point at the target, the rule point and the transfer.
func WriteText(w io.Writer, file string, r *Report) error {
	ew := &errWriter{w: w}
	c := &r.Curve
	fmt.Fprintf(ew, "%s on %s: %d queries", r.Scorer, file, r.N)
	if r.Categories > 0 {
		fmt.Fprintf(ew, ", %d categories", r.Categories)
	}
	fmt.Fprintln(ew)
	weak, strong := "weak model", "strong model"
	if r.Prices != nil {
		weak, strong = "weak   "+r.Prices.WeakModel, "strong "+r.Prices.StrongModel
	}
	fmt.Fprintf(ew, "%s accuracy %s, %s accuracy %s\n\n", weak, pct(c.AccWeak), strong, pct(c.AccStrong))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "% strong\taccuracy\tPGR\trandom mean\trandom 5–95 %\toracle\t")
	for i := 0; i <= 10; i++ {
		f := float64(i) / 10
		acc := c.At(f)
		m, lo, hi := r.Random.At(f)
		fmt.Fprintf(tw, "%d%%\t%s\t%.2f\t%s\t%s–%s\t%s\t\n", 10*i, pct(acc), c.PGR(acc), pct(m), pct(lo), pct(hi), pct(r.Oracle.At(f)))
	}
	tw.Flush()
	fmt.Fprintf(ew, "\nAPGR %.3f   random %.3f [%.3f–%.3f] (%d routers)   oracle %.3f\n",
		r.APGR, r.Random.APGR, r.Random.APGRLo, r.Random.APGRHi, r.Random.Routers, r.OracleAPGR)
	fmt.Fprintf(ew, "CPT(50%%) %s strong calls   CPT(80%%) %s   (random: 50.0%%, 80.0%%)\n", pct(r.CPT50), pct(r.CPT80))
	at := r.AtTarget
	fmt.Fprintf(ew, "at PGR target %.2f: threshold %s → %s strong calls, accuracy %s (PGR %.2f)%s\n",
		r.Target, threshold(at.Threshold), pct(at.Strong), pct(at.Acc), at.PGR, costText(at, r))
	fmt.Fprintln(ew, "  (threshold fitted on this file: optimistic; see --transfer)")
	if rp := r.Rule; rp != nil {
		where := "INSIDE the random band: no better than routing at random"
		switch {
		case rp.Acc > rp.RandomHi:
			where = "above the random band"
		case rp.Acc < rp.RandomLo:
			where = "BELOW the random band"
		}
		fmt.Fprintf(ew, "policy's own routing: %s strong calls, accuracy %s (PGR %.2f)%s\n",
			pct(rp.Strong), pct(rp.Acc), rp.PGR, costText(rp.Operating, r))
		fmt.Fprintf(ew, "  random routers at %s strong: %s [%s–%s] → %s\n", pct(rp.Strong), pct(rp.RandomMean), pct(rp.RandomLo), pct(rp.RandomHi), where)
	}
	if t := r.Transfer; t != nil {
		fmt.Fprintf(ew, "\ntransfer to %s (threshold %s fitted above for PGR %.2f):\n", t.File, threshold(t.Fitted.Threshold), r.Target)
		fmt.Fprintf(ew, "  fitted here:   %s strong, PGR %.2f\n", pct(t.Fitted.Strong), t.Fitted.PGR)
		fmt.Fprintf(ew, "  on %s: %s strong, accuracy %s, PGR %.2f%s\n", t.File, pct(t.There.Strong), pct(t.There.Acc), t.There.PGR, costText(t.There, r))
		fmt.Fprintf(ew, "  %s itself needs %s strong for PGR %.2f (threshold %s); APGR there %.3f (random 95th percentile %.3f)\n",
			t.File, pct(t.Needed.Strong), r.Target, threshold(t.Needed.Threshold), t.APGR, t.RandomHi)
		if t.Transfers(r.Target) {
			fmt.Fprintln(ew, "  → the threshold transfers")
		} else {
			fmt.Fprintln(ew, "  → the threshold does NOT transfer: measure and fit on your own traffic")
		}
	}
	return ew.err
}

func costText(o Operating, r *Report) string {
	if r.Prices == nil || o.AllStrongPico == 0 {
		return ""
	}
	out := r.Prices.OutputTokens
	if out <= 0 {
		out = 256
	}
	return fmt.Sprintf(", cost %s vs all-strong %s: saving %.1f%% (avg %.0f input + %d output tokens)",
		policies.PicoUSD(o.CostPico), policies.PicoUSD(o.AllStrongPico), 100*o.Saving(), r.AvgInputTokens, out)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

// WriteSVG plots the report: accuracy against % strong calls for the
// scorer, the random band and mean, the oracle, the operating point at the
// target and the policy's own point.
func WriteSVG(w io.Writer, title string, r *Report) error {
	const (
		W, H                   = 720, 480
		left, right, top, bott = 70, 190, 40, 60
	)
	pw, ph := float64(W-left-right), float64(H-top-bott)
	lo := min(r.Curve.AccWeak, r.Oracle.AccWeak)
	hi := r.Curve.AccStrong
	for _, p := range r.Oracle.Points {
		hi = max(hi, p.Acc)
	}
	for _, v := range r.Random.Lo {
		lo = min(lo, v)
	}
	lo = math.Floor(lo*20) / 20
	hi = math.Ceil(hi*20) / 20
	if hi <= lo {
		hi = lo + 0.05
	}
	x := func(f float64) float64 { return float64(left) + f*pw }
	y := func(a float64) float64 { return float64(top) + (hi-a)/(hi-lo)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">%s</text>`+"\n", left, escape(title))
	// Axes and grid.
	for i := 0; i <= 10; i += 2 {
		f := float64(i) / 10
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(f), top, x(f), H-bott)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d%%</text>`+"\n", x(f), H-bott+18, 10*i)
	}
	for a := lo; a <= hi+1e-9; a += 0.05 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(a), W-right, y(a))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, y(a)+4, 100*a)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">calls sent to the strong model</text>`+"\n", x(0.5), H-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">accuracy</text>`+"\n", y((lo+hi)/2))
	// Random band.
	b.WriteString(`<polygon fill="#bbb" fill-opacity="0.5" stroke="none" points="`)
	for i, f := range r.Random.F {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(f), y(r.Random.Hi[i]))
	}
	for i := len(r.Random.F) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(r.Random.F[i]), y(r.Random.Lo[i]))
	}
	b.WriteString("\"/>\n")
	poly := func(pts []Point, color, dash string) {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" %s points="`, color, dash)
		for _, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.F), y(p.Acc))
		}
		b.WriteString("\"/>\n")
	}
	mean := make([]Point, len(r.Random.F))
	for i, f := range r.Random.F {
		mean[i] = Point{f, r.Random.Mean[i]}
	}
	poly(mean, "#666", `stroke-dasharray="5 4"`)
	poly(r.Oracle.Points, "#2a9d3f", "")
	poly(thin(r.Curve.Points, 400), "#1f5fbf", "")
	dot := func(o Operating, color string) {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="black"/>`+"\n", x(o.Strong), y(o.Acc), color)
	}
	dot(r.AtTarget, "#1f5fbf")
	if r.Rule != nil {
		dot(r.Rule.Operating, "#e07b00")
	}
	// Legend.
	items := []struct{ color, label string }{
		{"#1f5fbf", "scorer"}, {"#2a9d3f", "oracle"}, {"#666", "random mean"}, {"#bbb", "random 5–95 %"},
	}
	items = append(items, struct{ color, label string }{"#1f5fbf", fmt.Sprintf("● PGR %.2f point", r.Target)})
	if r.Rule != nil {
		items = append(items, struct{ color, label string }{"#e07b00", "● policy's routing"})
	}
	for i, it := range items {
		yy := top + 10 + 20*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`, W-right+14, yy-4, it.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", W-right+34, yy, escape(it.label))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">APGR %.3f</text>`+"\n", W-right+14, top+30+20*len(items), r.APGR)
	fmt.Fprintf(&b, `<text x="%d" y="%d">random %.3f</text>`+"\n", W-right+14, top+48+20*len(items), r.Random.APGR)
	fmt.Fprintf(&b, `<text x="%d" y="%d">oracle %.3f</text>`+"\n", W-right+14, top+66+20*len(items), r.OracleAPGR)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// thin keeps at most about n points of a curve (its ends kept).
func thin(pts []Point, n int) []Point {
	if len(pts) <= n {
		return pts
	}
	step := float64(len(pts)-1) / float64(n-1)
	out := make([]Point, 0, n)
	for i := range n {
		out = append(out, pts[int(math.Round(float64(i)*step))])
	}
	return out
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
