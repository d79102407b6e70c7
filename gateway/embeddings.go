package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// maxEmbeddingsAnswer bounds the embeddings answer the gateway reads to
// count its usage (vectors of a large batch: tens of MB at most).
const maxEmbeddingsAnswer = 256 << 20

// isEmbeddings reports whether a pass-through request is an embeddings call.
func isEmbeddings(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/embeddings")
}

// embeddingsBudget returns the team budget of an embeddings call (nil when
// the team's policy has none), or refuses the call with an OpenAI-shaped
// 429 when the team's budget is spent.
func (s *Server) embeddingsBudget(ctx context.Context, team string) (*budget.Budget, *apiError) {
	b, err := llmwrap.NewBudget(s.pol.Policy(team), budget.WithStore(s.budgets), budget.WithLogger(s.logger))
	if err != nil {
		return nil, classify(err, s.secrets...)
	}
	if !b.Active() {
		return nil, nil
	}
	rem, err := b.Remaining(ctx, team)
	if err != nil {
		return nil, classify(err, s.secrets...)
	}
	left := rem.Remaining()
	if rem.Limit.USDMicros > 0 && left.USDMicros <= 0 || rem.Limit.Tokens > 0 && left.Tokens <= 0 {
		return nil, &apiError{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "budget_exceeded", NoRetry: true,
			Message: "tokenwise/gateway: the team budget of " + team + " is spent for this period (" + usd(rem.Used.USDMicros) + " USD, " + itoa(rem.Used.Tokens) + " tokens)"}
	}
	return b, nil
}

// chargeEmbeddings reads a successful embeddings answer's usage and model,
// records its tokens and, when the policy's catalog prices the model, its
// cost in the team's ledger (the one /v1/spend and the chat calls' budget
// read, shared by the replicas), and gives the answer back unchanged.
func (s *Server) chargeEmbeddings(resp *http.Response, b *budget.Budget, team string) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbeddingsAnswer))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var ans struct {
		Model string `json:"model"`
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
			TotalTokens  int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(body, &ans) != nil {
		s.logger.Warn("tokenwise/gateway: an embeddings answer without readable usage: not counted", "team", team)
		return nil
	}
	tok := max(ans.Usage.TotalTokens, ans.Usage.PromptTokens)
	amount := budget.Amount{Tokens: tok}
	if spec, ok := s.pol.Policy(team).Model(ans.Model); ok && spec.HasPrice() {
		amount.USDMicros = ceilMicro(int64(spec.Cost(policies.TokenCounts{Input: tok})))
	} else if tok > 0 {
		s.logger.Warn("tokenwise/gateway: an embeddings model without a price in the catalog: its tokens are counted, not its cost", "team", team, "model", ans.Model)
	}
	if amount.IsZero() {
		return nil
	}
	ctx := middleware.WithTeam(resp.Request.Context(), team)
	if err := s.record(ctx, b, team, amount); err != nil {
		// The answer is the caller's (the provider billed it): the miss
		// is logged, the answer delivered.
		s.logger.Warn("tokenwise/gateway: an embeddings call's spend could not be recorded", "team", team, "err", err)
	}
	return nil
}

// record adds amount to team's ledger in its current window: a
// reservation of nothing, settled at once at amount.
func (s *Server) record(ctx context.Context, b *budget.Budget, team string, amount budget.Amount) error {
	rem, err := b.Remaining(ctx, team)
	if err != nil {
		return err
	}
	now := time.Now()
	h, err := s.budgets.Reserve(ctx, budget.Reservation{Key: b.TeamKey(team), ID: newID("emb-"), Window: rem.Window, Now: now, TTL: time.Minute})
	if err != nil {
		return err
	}
	_, err = h.Settle(ctx, amount, now)
	return err
}

// ceilMicro rounds pico-dollars up to micro-dollars, as the budget does.
func ceilMicro(pico int64) int64 {
	q := pico / 1_000_000
	if pico%1_000_000 > 0 {
		q++
	}
	return q
}
