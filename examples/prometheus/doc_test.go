package main

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestDocSaysTheUnitTheMetricsHave: the command's doc (go doc
// ./examples/prometheus) gives tokenwise_cost_total and
// tokenwise_cache_saved_total the unit of their HELP, pico-USD (10^-12
// dollars), as README and adapters/otel do, not micro-USD, as it once did. A
// user who builds a dashboard from a doc that says micro-USD divides by 10^6
// instead of 10^12: a $0.0000825 call reads as $82.50.
func TestDocSaysTheUnitTheMetricsHave(t *testing.T) {
	d, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	ctx, _ := middleware.StartRun(context.Background(), "unit")
	if err := d.calls(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(d.handler)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src[:strings.Index(string(src), "\npackage main")])
	for _, series := range []string{"tokenwise_cost_total", "tokenwise_cache_saved_total"} {
		help := regexp.MustCompile(`# HELP ` + series + ` .*`).FindString(string(body))
		if !strings.Contains(help, "pico-USD") {
			t.Fatalf("%s: HELP %q", series, help)
		}
		// The doc's sentence naming the series, up to the next series.
		i := strings.Index(doc, series)
		if i < 0 {
			t.Fatalf("the doc does not name %s", series)
		}
		rest := doc[i:]
		if j := strings.Index(rest[len(series):], "tokenwise_"); j >= 0 {
			rest = rest[:len(series)+j]
		}
		if strings.Contains(rest, "micro-USD") {
			t.Errorf("the doc says %s is micro-USD; its HELP says %q", series, help)
		}
	}
}
