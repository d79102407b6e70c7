package observe_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

// The run report shows the calls that waited for a rate limit and the
// refusals, in the table and in JSON.
func TestReportRateLimits(t *testing.T) {
	t.Parallel()
	ctx, run := middleware.StartRun(context.Background(), "r1")
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) { f.RateWait += 1500 * time.Millisecond; f.RateRefusals++ })
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	h := middleware.Then(provider, instrument.New(nil, nil))
	for range 2 {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o"}); err != nil {
			t.Fatal(err)
		}
	}
	tot := run.Totals()
	if tot.RateWaits != 2 || tot.RateWait != 3*time.Second || tot.RateRefusals != 2 {
		t.Errorf("totals: %d waits, %v, %d refusals", tot.RateWaits, tot.RateWait, tot.RateRefusals)
	}
	if rep := observe.Report(run); !strings.Contains(rep, "rate limits: 2 calls waited 3s, 2 refused") {
		t.Errorf("report lacks the rate-limit line:\n%s", rep)
	}
	b, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		RateWaitMs float64 `json:"rate_wait_ms"`
		Refusals   int     `json:"rate_refusals"`
		Calls      []struct {
			RateWaitMs float64 `json:"rate_wait_ms"`
		} `json:"calls"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.RateWaitMs != 3000 || out.Refusals != 2 || len(out.Calls) != 2 || out.Calls[0].RateWaitMs != 1500 {
		t.Errorf("JSON: %s", b)
	}
}
