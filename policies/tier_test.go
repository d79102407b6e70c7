package policies_test

import (
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// budget.default_service_tier takes a tier's name; anything else is a
// problem at its line and field.
func TestDefaultServiceTierIsATiersName(t *testing.T) {
	p, err := policies.LoadBytes([]byte("version: 1\nbudget:\n  default_service_tier: priority\n"), "ok.yaml")
	if err != nil || p.Budget.DefaultServiceTier != "priority" {
		t.Fatalf("priority: %v, %+v", err, p)
	}
	_, err = policies.LoadBytes([]byte("version: 1\nbudget:\n  default_service_tier: Priority Processing\n"), "bad.yaml")
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") || !strings.Contains(err.Error(), "budget.default_service_tier") {
		t.Fatalf("a tier with spaces and capitals: %v, want a problem at bad.yaml:3 naming budget.default_service_tier", err)
	}
}
