package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tmc/langchaingo/llms"
	lcopenai "github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	oaiadapter "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/wiregen"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// markedBillServer answers each chat call with the answer stored under
// the marker its body holds (bill-…, written in the call's prompt), as
// JSON or as an event stream: a client that sends no "user" member is
// answered too.
type markedBillServer struct{ answers sync.Map }

var billMarker = regexp.MustCompile(`bill-[0-9a-z-]+`)

func (s *markedBillServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Stream bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, ok := s.answers.Load(string(billMarker.Find(body)))
	if !ok {
		http.Error(w, "no answer", http.StatusTeapot)
		return
	}
	a := v.(wiregen.BilledAnswer)
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, a.Events)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, a.Plain)
}

// billCall makes one call of a client for the billed answer a, whose
// prompt is prompt (the server's marker), through chain, over base to url;
// variant picks among the client's ways to be wired (the caller reads it
// as it likes). It returns the client's error and a description of the
// way it took.
type billCall func(ctx context.Context, chain middleware.Middleware, base http.RoundTripper, url string,
	a wiregen.BilledAnswer, prompt string, variant byte) (string, error)

// fuzzClientLedgerEqualsTheBill is FuzzLedgerEqualsTheBill's property for
// another client: one to three calls, each answered by a random billed
// answer (wiregen.NextBilledAnswer), each call's cost the catalog-priced
// bill to the pico-dollar, the team's spend their sum rounded up once,
// nothing held; a count of 2^62 tokens an error or a capped charge. An
// error of the client is allowed only for a count that is not a JSON
// integer (a client that fails to decode it; the bill is charged all the
// same).
func fuzzClientLedgerEqualsTheBill(f *testing.F, call billCall) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{2, 1, 200, 100, 50, 9, 3, 1, 2, 4, 1, 0, 0, 255, 255, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{5, 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{3, 2, 255, 255, 255, 255, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4})
	f.Add([]byte{1, 1, 3, 1, 2, 0, 16, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	f.Add([]byte{2, 0, 5, 3, 1, 0, 16, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	srv := &markedBillServer{}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	base := &http.Transport{}
	f.Cleanup(base.CloseIdleConnections)
	pol := &policies.Policy{Version: 1, Name: "bill", Budget: policies.Budget{
		Team: policies.TeamBudget{Period: policies.PeriodMonthly, MaxUSD: 1 << 52},
	}}
	quiet := slog.New(slog.DiscardHandler)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		next := wiregen.ByteReader(data)
		ledger, chain := newBillLedger(pol, quiet)
		team := fmt.Sprintf("t%d", seq.Add(1))
		ctx := middleware.WithTeam(context.Background(), team)

		const maxOut = 4096
		wantSum := new(big.Rat)
		var want []*big.Rat
		hostile := false
		variant := next()
		calls := int(next()%3) + 1
		for i := range calls {
			a := wiregen.NextBilledAnswer(next, maxOut)
			spec, _ := pol.Model(a.Model)
			hostile = hostile || a.Huge
			marker := fmt.Sprintf("bill-%s-%d", team, i)
			srv.answers.Store(marker, a)
			way, err := call(ctx, chain, base, ts.URL, a, "Check the disks. "+marker, variant)
			srv.answers.Delete(marker)
			if a.Huge {
				// An error or a capped charge, checked on the ledger below; it
				// exhausts the budget: the last call.
				break
			}
			if err != nil && a.PlainInts {
				t.Fatalf("call %d (%s: %s, tier %q, stream %v, usage %s): %v", i, way, a.Model, a.Tier, a.Stream, a.Usage, err)
			}
			bill := a.Bill(spec)
			want = append(want, bill)
			wantSum.Add(wantSum, bill)
		}

		ledger.check(t, pol, team, want, wantSum, hostile, "the bill is")
	})
}

// FuzzLangchaingoLedgerEqualsTheBill: FuzzLedgerEqualsTheBill's property
// through langchaingo's openai backend, streaming (WithStreamingFunc) or
// not, wired either way the README gives: wrapped by twlc.New over
// twlc.NewTransport, or bare over the go-openai adapter's NewHTTPClient.
func FuzzLangchaingoLedgerEqualsTheBill(f *testing.F) {
	fuzzClientLedgerEqualsTheBill(f, func(ctx context.Context, chain middleware.Middleware, base http.RoundTripper, url string,
		a wiregen.BilledAnswer, prompt string, variant byte) (string, error) {
		way, hc := "twlc.New over twlc.NewTransport", &http.Client{Transport: twlc.NewTransport(base)}
		if variant&1 == 1 {
			way, hc = "langchaingo over NewHTTPClient", oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(base))
		}
		inner, err := lcopenai.New(lcopenai.WithBaseURL(url), lcopenai.WithToken("k"), lcopenai.WithModel(a.Model), lcopenai.WithHTTPClient(hc))
		if err != nil {
			return way, err
		}
		var llm llms.Model = inner
		if variant&1 == 0 {
			llm = twlc.New(twlc.Models{a.Model: inner}, chain)
		}
		opts := []llms.CallOption{llms.WithModel(a.Model), llms.WithMaxTokens(4096)}
		if a.Stream {
			opts = append(opts, llms.WithStreamingFunc(func(context.Context, []byte) error { return nil }))
		}
		_, err = llm.GenerateContent(ctx, []llms.MessageContent{human(prompt)}, opts...)
		return way, err
	})
}

// FuzzOpenAIGoLedgerEqualsTheBill: FuzzLedgerEqualsTheBill's property
// through the official openai-go client's chat completions (New and
// NewStreaming) over the go-openai adapter's NewHTTPClient.
func FuzzOpenAIGoLedgerEqualsTheBill(f *testing.F) {
	fuzzClientLedgerEqualsTheBill(f, func(ctx context.Context, chain middleware.Middleware, base http.RoundTripper, url string,
		a wiregen.BilledAnswer, prompt string, _ byte) (string, error) {
		client := oai.NewClient(option.WithBaseURL(url), option.WithAPIKey("k"), option.WithMaxRetries(0),
			option.WithHTTPClient(oaiadapter.NewHTTPClient(chain, oaiadapter.WithBaseTransport(base))))
		params := oai.ChatCompletionNewParams{Model: a.Model, MaxCompletionTokens: oai.Int(4096),
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage(prompt)}}
		if !a.Stream {
			_, err := client.Chat.Completions.New(ctx, params)
			return "openai-go chat", err
		}
		params.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
		s := client.Chat.Completions.NewStreaming(ctx, params)
		for s.Next() {
		}
		err := s.Err()
		if cerr := s.Close(); err == nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
			err = cerr
		}
		return "openai-go chat stream", err
	})
}
