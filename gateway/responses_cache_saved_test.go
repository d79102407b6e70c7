package gateway_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayResponsesCacheHitOfAnEscalatedAnswerSavesWhatItCost: a
// Responses answer written by gpt-4o after gpt-4o-mini's — rejected by the
// cascade, or a final answer regenerated — cost both answers, each at its
// model's price; a cache hit of it saved that, as a chat call's hit does
// (llmwrap/cache Entry.Bill): not gpt-4o's part alone. Through the
// official openai-go client, as the run's report (saved_usd) and /metrics
// (tokenwise_cache_saved) show it.
func TestGatewayResponsesCacheHitOfAnEscalatedAnswerSavesWhatItCost(t *testing.T) {
	// gpt-4o-mini's usage: 1,000 input tokens at $0.15/M, 100 output at
	// $0.60/M; gpt-4o's: at $2.50/M and $10/M.
	const mini, strong = 210_000_000, 3_500_000_000
	for _, c := range escalations {
		t.Run(c.name, func(t *testing.T) {
			e := escalatedHit(t, c.routing, c.mini)
			status, rep, code := e.runReport(t, devopsKey, "run-1")
			if status != 200 {
				t.Fatalf("run report: %d %s", status, code)
			}
			if rep.Calls != 2 || rep.CacheHits != 1 || rep.CostPico != mini+strong {
				t.Fatalf("run report %+v: want 2 calls, 1 hit, the first at both answers' cost", rep.RunFigures)
			}
			if rep.SavedPico != mini+strong {
				t.Errorf("the hit saved %d pico-USD (%s), want %d: what the call it replaced cost", rep.SavedPico, rep.SavedUSD, int64(mini+strong))
			}
			m := e.finalMetrics(t)
			if got, _ := metricValue(t, m, "tokenwise_cache_saved_total"); got != strconv.FormatFloat(mini+strong, 'g', -1, 64) {
				t.Errorf("tokenwise_cache_saved_total = %q, want %g", got, float64(mini+strong))
			}
		})
	}
}

// escalations are the two ways a Responses call pays gpt-4o-mini's answer
// before gpt-4o's, which the client gets.
var escalations = []struct{ name, routing, mini string }{
	// gpt-4o-mini's answer is empty: non_empty escalates to gpt-4o.
	{"cascade", "cascade: {models: [gpt-4o-mini, gpt-4o]}", cascadeAnswer("gpt-4o-mini", "completed", "")},
	// gpt-4o-mini's final answer is written again by gpt-4o.
	{"regenerate", "default: gpt-4o-mini\n  regenerate_final: {enabled: true, model: gpt-4o}", ""},
}

// escalatedHit serves a gateway whose devops team caches and routes by
// routing (gpt-4o-mini answering mini, when set, else its canned answer),
// and sends it, with the official openai-go client, the same call for
// gpt-4.1 twice in run run-1: answered by gpt-4o, then by the cache.
func escalatedHit(t *testing.T, routing, mini string) *env {
	t.Helper()
	up := newModelUpstream(t)
	if mini != "" {
		up.mu.Lock()
		up.body["gpt-4o-mini"] = mini
		up.mu.Unlock()
	}
	pols := routingPolicies(t, routing)
	pols["devops.yaml"] += "cache: {enabled: true, ttl: 1h}\n"
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0),
		option.WithHeader(gateway.RunIDHeader, "run-1"))
	params := responses.ResponseNewParams{Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Which hosts need cleanup?")}}
	for i := range 2 {
		var hr *http.Response
		r, err := oc.Responses.New(t.Context(), params, option.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		if r.OutputText() != "from gpt-4o" || (hr.Header.Get("X-Tokenwise-Cache") == "hit") != (i == 1) {
			t.Fatalf("call %d: %q (cache %q), want gpt-4o's answer, the second from the cache", i, r.OutputText(), hr.Header.Get("X-Tokenwise-Cache"))
		}
	}
	if n := up.count(); n != 2 {
		t.Fatalf("%d upstream calls, want 2 (gpt-4o-mini, then gpt-4o; then a hit)", n)
	}
	return e
}

// TestGatewayResponsesCacheHitOfAnEscalatedAnswerIsTheAnsweringModels: a
// cache hit of gpt-4o's answer, which a cascade or a regeneration got
// after gpt-4o-mini's, is an answer of gpt-4o — the model whose answer it
// is, as the call it replaced was — not of gpt-4o-mini, where routing
// first sent the call: the run's report has the hit under gpt-4o, and
// /metrics both calls of gpt-4.1 answered by gpt-4o.
func TestGatewayResponsesCacheHitOfAnEscalatedAnswerIsTheAnsweringModels(t *testing.T) {
	for _, c := range escalations {
		t.Run(c.name, func(t *testing.T) {
			e := escalatedHit(t, c.routing, c.mini)
			status, rep, code := e.runReport(t, devopsKey, "run-1")
			if status != 200 {
				t.Fatalf("run report: %d %s", status, code)
			}
			if rep.ByModel["gpt-4o"].CacheHits != 1 || rep.ByModel["gpt-4o-mini"].CacheHits != 0 {
				t.Errorf("run report by model %+v: want the hit under gpt-4o", rep.ByModel)
			}
			m := e.finalMetrics(t)
			if got, _ := metricValue(t, m, "gen_ai_client_operation_duration_seconds_count", `gen_ai_request_model="gpt-4.1"`, `gen_ai_response_model="gpt-4o"`); got != "2" {
				t.Errorf("calls of gpt-4.1 answered by gpt-4o: %q, want 2 (the call and its hit)", got)
			}
		})
	}
}

// TestGatewayResponsesCacheHitIsOfTheModelAskedFor: a Responses call for
// gpt-4o that routing.default sends to gpt-4o-mini, answered from the
// cache the second time, is a call of gpt-4o — the model the caller asked
// for — as its first call was, and as a chat call's hit is: /metrics has
// both calls under gen_ai_request_model="gpt-4o" (answered by gpt-4o-mini),
// and what the hit saved under the model asked for. Through the official
// openai-go client.
func TestGatewayResponsesCacheHitIsOfTheModelAskedFor(t *testing.T) {
	const mini = 210_000_000 // gpt-4o-mini's 1,000 + 100 tokens (see TestGatewayResponsesCascade)
	up := newModelUpstream(t)
	pols := routingPolicies(t, "default: gpt-4o-mini")
	pols["devops.yaml"] += "cache: {enabled: true, ttl: 1h}\n"
	e := serveFile(t, writeFiles(t, up.URL+"/v1", pols, ""))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0),
		option.WithHeader(gateway.RunIDHeader, "run-1"))
	params := responses.ResponseNewParams{Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Which hosts need cleanup?")}}
	for i := range 2 {
		var hr *http.Response
		r, err := oc.Responses.New(t.Context(), params, option.WithResponseInto(&hr))
		if err != nil {
			t.Fatal(err)
		}
		if r.OutputText() != "from gpt-4o-mini" || (hr.Header.Get("X-Tokenwise-Cache") == "hit") != (i == 1) {
			t.Fatalf("call %d: %q (cache %q), want gpt-4o-mini's answer, the second from the cache", i, r.OutputText(), hr.Header.Get("X-Tokenwise-Cache"))
		}
	}
	if n := up.count(); n != 1 {
		t.Fatalf("%d upstream calls, want 1", n)
	}
	m := e.finalMetrics(t)
	if got, _ := metricValue(t, m, "gen_ai_client_operation_duration_seconds_count", `gen_ai_request_model="gpt-4o"`, `gen_ai_response_model="gpt-4o-mini"`); got != "2" {
		t.Errorf("calls of gpt-4o answered by gpt-4o-mini: %q, want 2 (the call and its hit)", got)
	}
	if got, _ := metricValue(t, m, "tokenwise_cache_saved_total", `gen_ai_request_model="gpt-4o"`); got != strconv.FormatFloat(mini, 'g', -1, 64) {
		t.Errorf(`tokenwise_cache_saved_total{gen_ai_request_model="gpt-4o"} = %q, want %g`, got, float64(mini))
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", m)
	}
}
