package gateway_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// TestGatewayCacheNeverServesTheOldRoutesAnswer: a team's cached chat
// answer is not served after a reload of its policy that routes the same
// request to another model: that call goes to the new route's model. A
// second call under the new policy is a hit again.
func TestGatewayCacheNeverServesTheOldRoutesAnswer(t *testing.T) {
	pol := func(model string) string {
		return "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h}\nrouting: {default: " + model + "}\n"
	}
	e := start(t, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": pol("gpt-4o-mini"),
		"payments.yaml": "version: 1\nname: payments\n"}, "")
	e.upstream.On(openaitest.Model("gpt-4o-mini")).Reply(openaitest.Text("I am mini"))
	e.upstream.On(openaitest.Model("gpt-4.1")).Reply(openaitest.Text("I am 4.1"))
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"which model are you?"}]}`
	ask := func() string {
		t.Helper()
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if got := ask(); !strings.Contains(got, "I am mini") {
		t.Fatalf("first answer %s", got)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "policies", "devops.yaml"), []byte(pol("gpt-4.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := ask(); !strings.Contains(got, "I am 4.1") {
		t.Fatalf("after the reload that routes to gpt-4.1, the answer is %s", got)
	}
	if got := ask(); !strings.Contains(got, "I am 4.1") || e.upstream.Count() != 2 {
		t.Fatalf("the same call again: %s, %d upstream calls, want a hit", got, e.upstream.Count())
	}
}
