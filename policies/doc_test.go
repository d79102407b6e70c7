package policies

import (
	"os"
	"strings"
	"testing"
)

// TestPackageDocSaysCostIsExactPico: go doc ./policies once said
// "ModelSpec.Cost prices TokenCounts in integer micro-dollars, rounding each
// component up so that a call is never under-billed"; ModelSpec.Cost returns
// a PicoUSD, exact, "no term is rounded" (its own doc, and README's "Money is
// exact ... no component is rounded"). A pico cost read as micro-dollars is
// 10^6 times the money.
func TestPackageDocSaysCostIsExactPico(t *testing.T) {
	t.Parallel()
	var _ PicoUSD = ModelSpec{}.Cost(TokenCounts{})
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	if strings.Contains(doc, "ModelSpec.Cost prices TokenCounts in integer micro-dollars") ||
		strings.Contains(doc, "rounding each component up") {
		t.Error("policies/doc.go says ModelSpec.Cost is micro-dollars rounded up per component; it is exact pico-dollars")
	}
}
