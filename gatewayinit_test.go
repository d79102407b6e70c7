package readme_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGatewayInitPrintsCommandsThatRun: `gateway init` prints
//
//	tokenwise serve -config my-gateway/gateway.yaml
//
// and the gateway file it writes says "check it with: tokenwise gateway
// check gateway.yaml": commands of an installed tokenwise binary. README,
// which otherwise runs the CLI with `go run ./cmd/tokenwise` from the
// checkout, shows the install (`go install ./cmd/tokenwise`) beside init,
// or else init would have to print the form it was run with.
func TestGatewayInitPrintsCommandsThatRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	dir := filepath.Join(t.TempDir(), "my-gateway")
	out, err := exec.Command("go", "run", "./cmd/tokenwise", "gateway", "init", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("gateway init: %v\n%s", err, out)
	}
	var serve string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " serve -config ") {
			serve = strings.TrimSpace(l)
		}
	}
	if serve == "" {
		t.Fatalf("no serve command printed:\n%s", out)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	installs := strings.Contains(string(readme), "go install") && strings.Contains(string(readme), "cmd/tokenwise")
	if !strings.HasPrefix(serve, "go run ") && !installs {
		t.Errorf("gateway init, run as README shows, prints %q, but README never installs a tokenwise binary", serve)
	}
}
