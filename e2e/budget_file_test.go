package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
)

// TestFileByIDIsBoundedByTheContextWindow: a chat message that refers to
// an uploaded file by file_id (openai-go's FileContentPart) has input the
// provider reads, which no count before the call can see: a 100-page PDF
// is tens of thousands of tokens. The budget counts such a call's input at
// what the model's context window leaves for its output (gpt-4o-mini:
// 128,000 − 16,384), so a team budget that cannot afford that refuses it
// before it is sent, the input cap refuses it saying why, a budget that
// can afford it settles it at the answer's usage, and a model without a
// known window is refused under a budget. Before, the part was counted at
// its wire JSON (about 20 tokens), and one call could spend fifteen times
// the team's budget.
func TestFileByIDIsBoundedByTheContextWindow(t *testing.T) {
	t.Parallel()
	file := oai.FileContentPart(oai.ChatCompletionContentPartFileFileParam{FileID: oai.String("file-abc123")})
	params := func(model string) oai.ChatCompletionNewParams {
		return oai.ChatCompletionNewParams{Model: model, Messages: []oai.ChatCompletionMessageParamUnion{
			oai.UserMessage([]oai.ChatCompletionContentPartUnionParam{file, oai.TextContentPart("Summarise this report.")})}}
	}
	answer := openaitest.Text("A summary.")
	answer.Usage = &openaitest.Usage{PromptTokens: 90000, CompletionTokens: 100}
	for _, c := range []struct {
		name, policy, model string
		want                error // nil: answered
		says                string
	}{
		{"a team budget it cannot afford", "version: 1\nname: t\nbudget: {team: {period: daily, max_usd: 0.001}}\n", "gpt-4o-mini", budget.ErrExceeded, "file_id"},
		{"the input cap", "version: 1\nname: t\nbudget: {request: {max_input_tokens: 10000}}\n", "gpt-4o-mini", budget.ErrExceeded, "file_id"},
		{"a model without a context window", "version: 1\nname: t\nbudget: {team: {period: daily, max_tokens: 1000000}}\nmodels:\n  my-model: {input_per_1m: 1, output_per_1m: 1}\n", "my-model", budget.ErrUncountable, "context_window"},
		{"a team budget that affords it", "version: 1\nname: t\nbudget: {team: {period: daily, max_usd: 1}}\n", "gpt-4o-mini", nil, ""},
		{"no budget", "version: 1\nname: t\n", "gpt-4o-mini", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := openaitest.NewServer(t)
			srv.Default(answer)
			p := mustPolicy(t, c.policy)
			store := budget.NewMemoryStore()
			client := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("k"), option.WithMaxRetries(0),
				option.WithHTTPClient(twopenai.NewHTTPClient(llmwrap.MustBuild(p, llmwrap.WithBudgetStore(store)), twopenai.WithBaseTransport(srv.Transport()))))
			ctx := middleware.WithTeam(context.Background(), "t")
			_, err := client.Chat.Completions.New(ctx, params(c.model))
			if c.want != nil {
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || len(srv.Requests()) != 0 {
					t.Fatalf("err %v, %d requests sent; want %v saying %q, before any request", err, len(srv.Requests()), c.want, c.says)
				}
				return
			}
			if err != nil || len(srv.Requests()) != 1 {
				t.Fatalf("err %v, %d requests sent; want the answer", err, len(srv.Requests()))
			}
			b, _ := llmwrap.NewBudget(p, budget.WithStore(store))
			if rem, err := b.Remaining(ctx, "t"); err != nil || !rem.Reserved.IsZero() {
				t.Fatalf("team ledger %+v, %v: want nothing held after the answer", rem, err)
			} else if p.Budget.Team.MaxUSD > 0 && rem.Used.USDMicros != 13_560 {
				// 90,000 × $0.15/1M + 100 × $0.60/1M = $0.01356.
				t.Fatalf("team spent %d µ$, want the answer's usage, 13560", rem.Used.USDMicros)
			}
		})
	}
}
