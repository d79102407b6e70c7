package e2e

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// errFinal stands for a refusal meant for the caller: a rate limit, not
// the provider's.
var errFinal = errors.New("final")

type finalLimit struct{}

func (finalLimit) Error() string { return "rate limited, final" }
func (finalLimit) Is(target error) bool {
	return target == middleware.ErrRateLimited || target == errFinal
}

// An error listed in Stop never moves on, even when it matches On; the
// same kind of error without the Stop match does.
func TestStopNeverMovesOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"stop", finalLimit{}, []string{"gpt-4o"}},
		{"rate limited", &middleware.ProviderError{Kind: middleware.ErrRateLimited, StatusCode: 429}, []string{"gpt-4o", "gpt-4o-mini"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := openaitest.New()
			srv.On().Reply(openaitest.Text("ok"))
			var tried []string
			refuseFirst := func(next middleware.Handler) middleware.Handler {
				return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
					tried = append(tried, req.Model)
					if req.Model == "gpt-4o" {
						return nil, tc.err
					}
					return next.Handle(ctx, req)
				})
			}
			h := middleware.Then(provider(srv), instrument.New(nil, nil),
				middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}, Stop: []error{errFinal}})), refuseFirst)
			_, err := h.Handle(context.Background(), user("hi"))
			if !slices.Equal(tried, tc.want) {
				t.Errorf("tried %v, want %v", tried, tc.want)
			}
			if len(tc.want) == 1 && !errors.Is(err, errFinal) {
				t.Errorf("err %v, want the refusal", err)
			}
		})
	}
}
