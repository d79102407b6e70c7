package policies

import (
	"strings"
	"testing"
	"time"
)

// TestValidateRateLimits runs one mistake of the rate_limits section per
// case through LoadBytes and checks its path, line and message.
func TestValidateRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string // appended to "version: 1\n"
		path string
		line int
		msg  string
	}{
		{"unknown model", "rate_limits:\n  models:\n    gpt-9: {rpm: 10}\n", "rate_limits.models.gpt-9", 4, `unknown model "gpt-9"`},
		{"negative rpm", "rate_limits:\n  models:\n    gpt-4o: {rpm: -1}\n", "rate_limits.models.gpt-4o.rpm", 4, "must not be negative"},
		{"no limit", "rate_limits:\n  models:\n    gpt-4o: {burst: 1s}\n", "rate_limits.models.gpt-4o", 4, "no limit set"},
		{"burst over a minute", "rate_limits:\n  models:\n    gpt-4o: {rpm: 5, burst: 2m}\n", "rate_limits.models.gpt-4o.burst", 4, "at most 1m"},
		{"empty share", "rate_limits:\n  models: {gpt-4o: {rpm: 5}}\n  teams:\n    sre: {}\n", "rate_limits.teams.sre", 5, "no share set"},
		{"negative weight", "rate_limits:\n  models: {gpt-4o: {rpm: 5}}\n  teams:\n    sre: {weight: -2}\n", "rate_limits.teams.sre.weight", 5, "must not be negative"},
		{"teams without models", "rate_limits:\n  teams:\n    sre: {weight: 1}\n", "rate_limits.teams", 3, "nothing to share"},
		{"bad on_limit", "rate_limits: {on_limit: block}\n", "rate_limits.on_limit", 2, `invalid value "block": want wait, reject or fallback`},
		{"fallback without chain", "rate_limits: {on_limit: fallback}\n", "rate_limits.on_limit", 2, "needs fallback.models"},
		{"dir store", "rate_limits: {store: {kind: dir}}\n", "rate_limits.store.kind", 2, "want memory or redis"},
		{"local fraction alone", "rate_limits: {store: {local_fraction: 0.5}}\n", "rate_limits.store.local_fraction", 2, "only applies with on_unavailable: local"},
		{"local fraction range", "rate_limits: {store: {on_unavailable: local, local_fraction: 3}}\n", "rate_limits.store.local_fraction", 2, "fraction in (0,1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte("version: 1\n"+tt.src), "p.yaml")
			if err == nil {
				t.Fatalf("LoadBytes succeeded, want %s: %s", tt.path, tt.msg)
			}
			for _, pr := range problemsOf(t, err) {
				if pr.Path == tt.path && pr.Line == tt.line && strings.Contains(pr.Msg, tt.msg) {
					return
				}
			}
			t.Errorf("no problem %s (line %d) containing %q; got:\n%v", tt.path, tt.line, tt.msg, err)
		})
	}
}

// TestLoadRateLimits loads a complete section and reads it back.
func TestLoadRateLimits(t *testing.T) {
	t.Parallel()
	src := `version: 1
fallback: {models: [gpt-4o-mini]}
rate_limits:
  models:
    gpt-4o: {rpm: 600, tpm: 30000, max_concurrent: 8, burst: 2s}
  teams:
    sre: {weight: 2}
    "*": {weight: 1, max_concurrent: 2}
  on_limit: fallback
  max_wait: 5s
  reserve_output: 256
  learn_from_provider: false
  store: {kind: redis, key_prefix: rl, on_unavailable: local, local_fraction: 0.25}
`
	p, err := LoadBytes([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := p.RateLimits
	if m := r.Models["gpt-4o"]; m.RPM != 600 || m.TPM != 30000 || m.MaxConcurrent != 8 || m.Burst.Duration() != 2*time.Second {
		t.Errorf("model limits = %+v", m)
	}
	if r.Teams["sre"].Weight != 2 || r.Teams["*"].MaxConcurrent != 2 || r.OnLimit != OnLimitFallback ||
		r.MaxWait.Duration() != 5*time.Second || r.ReserveOutput != 256 || r.IsLearning() || !r.Enabled() {
		t.Errorf("rate limits = %+v", r)
	}
	if s := r.Store; s.Kind != StoreRedis || s.KeyPrefix != "rl" || s.OnUnavailable != UnavailableLocal || s.LocalFraction != 0.25 {
		t.Errorf("store = %+v", s)
	}
	if !(RateLimits{}).IsLearning() || (RateLimits{}).Enabled() {
		t.Error("zero RateLimits: want learning on and no limits")
	}
}
