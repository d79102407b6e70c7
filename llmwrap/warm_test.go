package llmwrap_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// TestBuildWarmsTheVocabulary: in a fresh process, Build loads the
// tokenizer's vocabulary, so that the first call does not load it within
// its own deadline (a quarter of a second: a call with a 70ms timeout
// returned after 250ms). The check runs in a child process of the test
// binary, where nothing has loaded it yet.
func TestBuildWarmsTheVocabulary(t *testing.T) {
	if os.Getenv("TOKENWISE_WARM_CHILD") == "1" {
		if tokens.Loaded(tokens.O200kBase) {
			os.Exit(4) // loaded before Build: the check would prove nothing
		}
		if _, err := llmwrap.Build(policies.Default()); err != nil {
			os.Exit(5)
		}
		if !tokens.Loaded(tokens.O200kBase) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBuildWarmsTheVocabulary$")
	cmd.Env = append(os.Environ(), "TOKENWISE_WARM_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v (exit 3: Build left the vocabulary unloaded; 4: loaded before Build)\n%s", err, out)
	}
}
