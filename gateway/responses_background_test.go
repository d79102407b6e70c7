package gateway_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// backgroundUpstream answers a Responses call with background: true as
// OpenAI does — at once, queued, without usage — each with an id of its
// own (resp_bg_1, …); a retrieval (GET /v1/responses/{id}) or a
// cancellation (POST /v1/responses/{id}/cancel) answers the response in
// the state the test set (status, and usage when done).
type backgroundUpstream struct {
	mu    sync.Mutex
	n     int
	state map[string]string // id -> status and usage: `"status":"completed","usage":{...}`
	// queued is the usage of the queued answer ("": null, as OpenAI's).
	queued string
}

func (b *backgroundUpstream) set(id, status, usage string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state[id] = `"status":"` + status + `","usage":` + usage
}

func (b *backgroundUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	answer := func(id, state string) {
		_, _ = io.WriteString(w, `{"id":"`+id+`","object":"response","created_at":1,"background":true,"model":"gpt-4o-mini","output":[],`+state+`}`)
	}
	switch rest, _ := strings.CutPrefix(r.URL.Path, "/v1/responses"); {
	case r.Method == http.MethodPost && rest == "":
		b.n++
		id := fmt.Sprintf("resp_bg_%d", b.n)
		b.state[id] = `"status":"queued","usage":` + cmp.Or(b.queued, "null")
		answer(id, b.state[id])
	case r.Method == http.MethodGet && b.state[strings.TrimPrefix(rest, "/")] != "":
		answer(strings.TrimPrefix(rest, "/"), b.state[strings.TrimPrefix(rest, "/")])
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/cancel"):
		id := strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/cancel")
		b.state[id] = `"status":"cancelled","usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}`
		answer(id, b.state[id])
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"No response found","type":"invalid_request_error","param":null,"code":null}}`)
	}
}

// TestGatewayChargesBackgroundResponsesTheirUsage: a Responses call with
// background: true is answered queued, without usage, and the provider
// bills what the response uses when it is done. Through openai-go, with
// and without a fallback section (the call's two paths): the call's
// reservation is held — not charged — while the response runs; the
// client's retrieval that shows it completed settles it at its usage (10
// input and 5 output tokens), a retrieval that shows it still running
// leaves it held, and a cancellation settles it at the usage of the
// cancelled response; a response never seen done is charged its
// reservation after limits.run_idle, and one held when the gateway
// closes, at its close: what is held is never lost nor overshot.
// Before, every background call was charged its whole reservation at
// once (16,384 output tokens of gpt-4o-mini, $0.0098 for a call of
// $0.0000045), and the usage of the done response was never read.
func TestGatewayChargesBackgroundResponsesTheirUsage(t *testing.T) {
	for _, fallback := range []string{"", "fallback: {models: [gpt-4o], retry: {max_attempts: 2, base_delay: 1ms}}\n"} {
		t.Run(map[bool]string{true: "no_fallback", false: "fallback"}[fallback == ""], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &backgroundUpstream{state: map[string]string{}}
				pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
					"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n" + fallback}
				t.Setenv(upstreamEnv, upstreamKey)
				srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", pols, "limits: {run_idle: 10m}\n"),
					openaitest.NewTransport(up), slog.New(slog.DiscardHandler))
				defer func() {
					tr.CloseIdleConnections()
					_ = srv.Shutdown(context.Background())
					<-served
				}()
				e := &env{url: "http://gateway", client: &http.Client{Transport: tr}}
				oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"), option.WithHTTPClient(e.client),
					option.WithMaxRetries(0))
				ctx := t.Context()
				background := func() string {
					t.Helper()
					r, err := oc.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
						Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
					if err != nil || r.Status != "queued" {
						t.Fatalf("a background call: %+v %v", r, err)
					}
					return r.ID
				}
				get := func(id, want string) {
					t.Helper()
					if r, err := oc.Responses.Get(ctx, id, responses.ResponseGetParams{}); err != nil || string(r.Status) != want {
						t.Fatalf("retrieval of %s: %+v %v, want it %s", id, r, err, want)
					}
				}

				// Retrieved running, then completed: held, then charged its usage.
				id := background()
				if s := e.spend(t); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
					t.Errorf("a background call running: spend %+v, want its reservation held, nothing charged", s)
				}
				up.set(id, "in_progress", "null")
				get(id, "in_progress")
				if s := e.spend(t); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
					t.Errorf("a background call retrieved running: spend %+v, want its reservation still held", s)
				}
				up.set(id, "completed", `{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}`)
				get(id, "completed")
				get(id, "completed") // read again: charged once
				if s := e.spend(t); s.SpentTokens != 15 || s.ReservedUSD != "0.000000" {
					t.Errorf("a background call retrieved completed: spend %+v, want its usage, 15 tokens, and nothing held", s)
				}

				// Cancelled: charged the usage of the cancelled response.
				id = background()
				if r, err := oc.Responses.Cancel(ctx, id); err != nil || r.Status != "cancelled" {
					t.Fatalf("cancel: %+v %v", r, err)
				}
				if s := e.spend(t); s.SpentTokens != 15+12 || s.ReservedUSD != "0.000000" {
					t.Errorf("a background call cancelled: spend %+v, want 12 more tokens and nothing held", s)
				}

				// Never seen done: its reservation, after run_idle.
				id = background()
				time.Sleep(10*time.Minute - time.Second)
				synctest.Wait()
				if s := e.spend(t); s.SpentTokens != 27 || s.ReservedUSD == "0.000000" {
					t.Errorf("a background call before run_idle: spend %+v, want it held", s)
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				s := e.spend(t)
				if s.SpentTokens < 27+16384 || s.ReservedUSD != "0.000000" {
					t.Errorf("a background call not seen done in run_idle: spend %+v, want its reservation charged (16,384 output tokens and its input)", s)
				}
				up.set(id, "completed", `{"input_tokens":10,"output_tokens":5,"total_tokens":15}`)
				get(id, "completed") // too late: charged once
				if s2 := e.spend(t); s2.SpentTokens != s.SpentTokens {
					t.Errorf("a retrieval after the charge: spend %+v, want it unchanged (%d tokens)", s2, s.SpentTokens)
				}

				// Held when the gateway closes: charged its reservation.
				background()
				spent := s.SpentTokens
				_ = srv.Close()
				synctest.Wait()
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/v1/spend", nil)
				req.Header.Set("Authorization", "Bearer "+devopsKey)
				srv.Handler().ServeHTTP(rec, req)
				var sp gateway.Spend
				if err := json.Unmarshal(rec.Body.Bytes(), &sp); err != nil {
					t.Fatalf("spend after close: %d %s", rec.Code, rec.Body)
				}
				if sp.SpentTokens < spent+16384 || sp.ReservedUSD != "0.000000" {
					t.Errorf("a background call held at close: spend %+v, want its reservation charged", sp)
				}
			})
		})
	}
}

// TestGatewayNeverCascadesABackgroundResponse: a background call's answer
// is a response queued, whose output is not there yet to check: under
// routing.cascade or routing.regenerate_final it is passed on as the
// model answered it, sent once — its response runs, and is billed, at the
// provider — and never escalated or regenerated on another model, which
// would start a second response for the client's one and charge both.
// Before, the queued answer failed the cascade's checks (empty, not
// completed) and the call went to the next model.
func TestGatewayNeverCascadesABackgroundResponse(t *testing.T) {
	for _, routing := range []string{"cascade: {models: [gpt-4o-mini, gpt-4o]}", "regenerate_final: {enabled: true, model: gpt-4o}"} {
		t.Run(strings.Fields(routing)[0], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &backgroundUpstream{state: map[string]string{}}
				srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", routingPolicies(t, routing), ""),
					openaitest.NewTransport(up), slog.New(slog.DiscardHandler))
				defer func() {
					tr.CloseIdleConnections()
					_ = srv.Shutdown(context.Background())
					<-served
				}()
				oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
					option.WithHTTPClient(&http.Client{Transport: tr}), option.WithMaxRetries(0))
				r, err := oc.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
					Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
				if err != nil || r.Status != "queued" || r.ID != "resp_bg_1" {
					t.Errorf("a background call: %s %s %v, want the first model's queued response resp_bg_1", r.ID, r.Status, err)
				}
				up.mu.Lock()
				defer up.mu.Unlock()
				if up.n != 1 {
					t.Errorf("the upstream started %d responses for one background call, want 1", up.n)
				}
			})
		})
	}
}

// TestGatewayHoldsAQueuedResponseOfZeroUsage: a background call answered
// queued with a usage of zeros (a server that writes the usage of a
// response that has not run yet as zeros, not null) has not run: what it
// costs is known when it is done. Its reservation is held, not charged,
// until a retrieval shows it completed, which settles it at its usage, as
// a queued answer without usage is (TestGatewayChargesBackgroundResponsesTheirUsage);
// never seen done, it is charged its reservation after limits.run_idle.
// Before, the zeros were read as a usage that counts nothing and the call
// was charged its whole reservation at once.
func TestGatewayHoldsAQueuedResponseOfZeroUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &backgroundUpstream{state: map[string]string{}, queued: `{"input_tokens":0,"output_tokens":0,"total_tokens":0}`}
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
			"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
		t.Setenv(upstreamEnv, upstreamKey)
		srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", pols, "limits: {run_idle: 10m}\n"),
			openaitest.NewTransport(up), slog.New(slog.DiscardHandler))
		defer func() {
			tr.CloseIdleConnections()
			_ = srv.Shutdown(context.Background())
			<-served
		}()
		e := &env{url: "http://gateway", client: &http.Client{Transport: tr}}
		oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"), option.WithHTTPClient(e.client),
			option.WithMaxRetries(0))
		ctx := t.Context()
		background := func() string {
			t.Helper()
			r, err := oc.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
			if err != nil || r.Status != "queued" {
				t.Fatalf("a background call: %+v %v", r, err)
			}
			return r.ID
		}
		id := background()
		if s := e.spend(t); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
			t.Fatalf("a background call queued with a usage of zeros: spend %+v, want its reservation held, nothing charged", s)
		}
		up.set(id, "completed", `{"input_tokens":10,"output_tokens":5,"total_tokens":15}`)
		if r, err := oc.Responses.Get(ctx, id, responses.ResponseGetParams{}); err != nil || r.Status != "completed" {
			t.Fatalf("retrieval: %+v %v", r, err)
		}
		if s := e.spend(t); s.SpentTokens != 15 || s.ReservedUSD != "0.000000" {
			t.Errorf("a background call retrieved completed: spend %+v, want its usage, 15 tokens, and nothing held", s)
		}
		// Never seen done: its reservation, after run_idle.
		background()
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		if s := e.spend(t); s.SpentTokens < 15+16384 || s.ReservedUSD != "0.000000" {
			t.Errorf("a background call not seen done in run_idle: spend %+v, want its reservation charged", s)
		}
	})
}
