package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/gateway"
)

// unansweredPolicy is the devops team's policy of the tests of calls sent
// and ended before their answer: a call timeout of 30 s, a team budget.
const unansweredPolicy = "version: 1\nname: devops\ntimeouts: {call: 30s}\nbudget: {team: {period: monthly, max_usd: 1}}\n"

// pipeClient is openai-go on e's pipe (timeoutEnv), as the devops team.
func pipeClient(e *env) *openai.Client {
	c := openai.NewClient(option.WithHTTPClient(e.client), option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"),
		option.WithMaxRetries(0))
	return &c
}

// pipeRunReport is the report of run id of the devops team, read on e's
// pipe.
func pipeRunReport(t *testing.T, e *env, id string) gateway.RunReport {
	t.Helper()
	resp := e.do(t, http.MethodGet, "/v1/runs/"+url.PathEscape(id), devopsKey, "")
	var rep gateway.RunReport
	if resp.StatusCode != 200 {
		t.Fatalf("run report: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// checkChargedInput checks that the team's ledger and the run's report
// have the call charged its input alone (input tokens, fewer than limit,
// none held), flagged as an estimate in the report.
func checkChargedInput(t *testing.T, e *env, run string, limit int64) {
	t.Helper()
	sp := e.spend(t)
	if sp.SpentTokens <= 0 || sp.SpentTokens >= limit || sp.ReservedUSD != "0.000000" || sp.InFlightCalls != 0 {
		t.Errorf("spend %+v: want the call's input alone charged (0 < tokens < %d), nothing held", sp, limit)
	}
	rep := pipeRunReport(t, e, run)
	if rep.Calls != 1 || rep.FailedCalls != 1 || rep.InputTokens != sp.SpentTokens || rep.EstimatedCalls != 1 ||
		rep.EstimatedPico <= 0 || rep.EstimatedPico != rep.CostPico {
		t.Errorf("run report %+v: want one failed call of %d input tokens, its cost an estimate", rep, sp.SpentTokens)
	}
}

// TestEmbeddingsSentAndUnansweredAreChargedTheirInput: an embeddings call
// (openai-go) that reached the upstream and ended before its answer — its
// call timeout passed, or its client went away — is charged its input in
// the team's ledger (/v1/spend) and in its run's report, flagged as an
// estimate: the provider bills a call it processed, as the chain bills a
// chat attempt that timed out or was cancelled. (It was released: $0.)
// (Fake time: synctest.)
func TestEmbeddingsSentAndUnansweredAreChargedTheirInput(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	params := openai.EmbeddingNewParams{Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hang")}}
	t.Run("timed out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, unansweredPolicy)
			_, err := pipeClient(e).Embeddings.New(t.Context(), params, option.WithHeader(gateway.RunIDHeader, "emb-timeout"))
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != 504 || ae.Code != "timeout" {
				t.Fatalf("err %v, want the gateway's 504 timeout", err)
			}
			synctest.Wait()
			checkChargedInput(t, e, "emb-timeout", 100)
		})
	})
	t.Run("client gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, unansweredPolicy)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			if _, err := pipeClient(e).Embeddings.New(ctx, params, option.WithHeader(gateway.RunIDHeader, "emb-gone")); !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want the client's cancellation", err)
			}
			synctest.Wait()
			checkChargedInput(t, e, "emb-gone", 100)
		})
	})
}

// responsesHang is a Responses call (openai-go) the upstream never answers.
func responsesHang() responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hang")},
		MaxOutputTokens: openai.Int(100)}
}

// TestResponsesClientGoneInFlightIsChargedItsInput: a Responses call
// (openai-go) whose client goes away while its attempt is in flight is
// charged its input in the team's ledger and its run's report, flagged as
// an estimate, as a chat call's cancelled attempt is (its reservation was
// released: $0). (Fake time: synctest.)
func TestResponsesClientGoneInFlightIsChargedItsInput(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		e := timeoutEnv(t, unansweredPolicy)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		if _, err := pipeClient(e).Responses.New(ctx, responsesHang(), option.WithHeader(gateway.RunIDHeader, "resp-gone")); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want the client's cancellation", err)
		}
		synctest.Wait()
		checkChargedInput(t, e, "resp-gone", 100)
	})
}

// TestResponsesWithoutTheirChainAreChargedAsWithIt: a team whose policy's
// fallback section does not build (gateway.FailResponsesChains: the
// policy checks let no such policy load) has its Responses calls sent
// without the chain; one of them (openai-go) that was sent and timed out,
// or whose client went away, before its answer is charged its input in
// the team's ledger and its run's report, an estimate, as through the
// chain (it was released: $0). (Fake time: synctest.)
func TestResponsesWithoutTheirChainAreChargedAsWithIt(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	t.Cleanup(gateway.FailResponsesChains())
	t.Run("timed out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, unansweredPolicy)
			_, err := pipeClient(e).Responses.New(t.Context(), responsesHang(), option.WithHeader(gateway.RunIDHeader, "resp-timeout"))
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != 504 || ae.Code != "timeout" {
				t.Fatalf("err %v, want the gateway's 504 timeout", err)
			}
			synctest.Wait()
			if !strings.Contains(e.logs.String(), "does not build") {
				t.Fatalf("the call went through the chain: its logs:\n%s", e.logs)
			}
			checkChargedInput(t, e, "resp-timeout", 100)
		})
	})
	t.Run("client gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := timeoutEnv(t, unansweredPolicy)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			if _, err := pipeClient(e).Responses.New(ctx, responsesHang(), option.WithHeader(gateway.RunIDHeader, "resp-gone")); !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want the client's cancellation", err)
			}
			synctest.Wait()
			checkChargedInput(t, e, "resp-gone", 100)
		})
	})
}

// TestResponsesUnansweredInARunWithoutABudgetArePriced: a team without a
// budget has a Responses call (openai-go) of a run that was sent and
// timed out before its answer; the run's report has it at its input's
// price (gpt-4o-mini's $0.15/M), an estimate, as the chain's Meter prices
// a chat attempt that timed out — not at $0.
func TestResponsesUnansweredInARunWithoutABudgetArePriced(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		e := timeoutEnv(t, "version: 1\nname: devops\ntimeouts: {call: 30s}\n")
		_, err := pipeClient(e).Responses.New(t.Context(), responsesHang(), option.WithHeader(gateway.RunIDHeader, "no-budget"))
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 504 || ae.Code != "timeout" {
			t.Fatalf("err %v, want the gateway's 504 timeout", err)
		}
		synctest.Wait()
		rep := pipeRunReport(t, e, "no-budget")
		if rep.Calls != 1 || rep.InputTokens <= 0 || rep.EstimatedCalls != 1 || rep.CostPico != rep.InputTokens*150_000 || rep.EstimatedPico != rep.CostPico {
			t.Errorf("run report %+v: want one call of its input at $0.15/M, an estimate", rep)
		}
	})
}
