package readme_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
)

// TestEmbeddedDefaultIsTheExamplesDefault: README names the embedded
// default policy and examples/policies/default.yaml together ("The embedded
// default policy (`policies.Default()`, `examples/policies/default.yaml`)"),
// and `gateway init` writes the embedded one as a new gateway's
// default.yaml: every value of the two (as Explain lists them) is the same.
// They once differed: the embedded one had no first-token or idle timeout
// for streams and no circuit breaker, which the examples' copy had, so a
// gateway made with `gateway init` had neither.
func TestEmbeddedDefaultIsTheExamplesDefault(t *testing.T) {
	ex, err := policies.LoadFileExtends(filepath.Join("examples", "policies", "default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := func(p *policies.Policy) map[string]string {
		m := map[string]string{}
		for _, o := range p.Explain() {
			m[o.Path] = o.Value
		}
		return m
	}
	emb, exv := values(policies.Default()), values(ex)
	var diff []string
	for k, v := range exv {
		if emb[k] != v {
			diff = append(diff, k+": examples "+v+", embedded "+emb[k])
		}
	}
	for k, v := range emb {
		if _, ok := exv[k]; !ok {
			diff = append(diff, k+": embedded "+v+", examples none")
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("the embedded default and examples/policies/default.yaml differ:\n%s", strings.Join(diff, "\n"))
	}
}
