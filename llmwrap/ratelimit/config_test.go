package ratelimit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
)

func TestBadConfigIsAnError(t *testing.T) {
	t.Parallel()
	for _, cfg := range []ratelimit.Config{
		{Models: map[string]ratelimit.ModelLimit{"m": {RPM: -1}}},
		{Models: map[string]ratelimit.ModelLimit{"m": {RPM: 1, Burst: 2 * time.Minute}}},
		{Teams: map[string]ratelimit.TeamShare{"t": {Weight: -1}}},
		{OnLimit: "queue"},
		{OnUnavailable: "ignore"},
		{MaxWait: -time.Second},
		{LocalFraction: 1.5},
	} {
		if _, err := ratelimit.New(cfg); !errors.Is(err, ratelimit.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

func TestNoModelsAddNoLayer(t *testing.T) {
	t.Parallel()
	l, err := ratelimit.New(ratelimit.Config{OnLimit: ratelimit.OnLimitReject})
	if err != nil || l.Middleware() != nil {
		t.Fatalf("New without models: %v; middleware %v, want none", err, l.Middleware() != nil)
	}
}
