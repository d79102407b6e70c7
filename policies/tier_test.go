package policies_test

import (
	"os"
	"path/filepath"
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

// The directory loader records the digest of a policy's learned weights
// file whatever its size: a file larger than a policy may be (a router
// of 2^21 buckets, 2 MiB) is no policy file, and was not digested, so
// its retraining went unseen.
func TestWeightsDigestOfALargeWeightsFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "router.bin"), make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := "version: 1\nrouting:\n  default: gpt-4o\n  learned: {weights: router.bin, weak: gpt-4o-mini}\n"
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policies.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := set.Policy("default").WeightsDigest(); len(d) != 64 {
		t.Fatalf("digest of a 2 MiB weights file %q, want its SHA-256", d)
	}
}
