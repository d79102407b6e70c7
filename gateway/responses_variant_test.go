package gateway_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGatewayResponsesCacheNeverServesTheOldPolicysAnswer: under a
// cascade, gpt-4o-mini's empty answer escalates to gpt-4o, whose answer
// the Responses cache keeps. A reload that drops the cascade sends the
// same request to gpt-4o-mini alone: the cache, keyed on the team's
// routing as the chat path's is, does not answer it with gpt-4o's kept
// answer.
func TestGatewayResponsesCacheNeverServesTheOldPolicysAnswer(t *testing.T) {
	up := newModelUpstream(t)
	pols := routingPolicies(t, "cascade: {models: [gpt-4o-mini, gpt-4o]}")
	pols["devops.yaml"] += "cache: {enabled: true, ttl: 1h}\n"
	cfgPath := writeFiles(t, up.URL+"/v1", pols, "")
	e := serveFile(t, cfgPath)
	up.mu.Lock()
	up.body["gpt-4o-mini"] = cascadeAnswer("gpt-4o-mini", "completed", "")
	up.mu.Unlock()
	call := func() string {
		t.Helper()
		r := e.do(t, "POST", "/v1/responses", devopsKey, `{"model":"gpt-4o-mini","input":"Check the disks.","temperature":0}`)
		got, _ := io.ReadAll(r.Body)
		var answer struct {
			Model string `json:"model"`
		}
		if r.StatusCode != 200 || json.Unmarshal(got, &answer) != nil {
			t.Fatalf("%d %s", r.StatusCode, got)
		}
		return answer.Model
	}
	if m := call(); m != "gpt-4o" {
		t.Fatalf("under the cascade: answered by %s, want gpt-4o (gpt-4o-mini's answer is empty)", m)
	}
	n := up.count()
	if m := call(); m != "gpt-4o" || up.count() != n {
		t.Fatalf("the same call again: answered by %s, %d upstream calls, want the kept answer", m, up.count()-n)
	}

	noCascade := strings.Replace(pols["devops.yaml"], "cascade: {models: [gpt-4o-mini, gpt-4o]}", "rules: []", 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "policies", "devops.yaml"), []byte(noCascade), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := call(); m != "gpt-4o-mini" {
		t.Fatalf("after the reload without the cascade: answered by %s, want gpt-4o-mini (the cascade's kept answer served)", m)
	}
	if s := up.seen(n, "/responses"); strings.Join(s, ",") != "gpt-4o-mini" {
		t.Fatalf("the upstream got %v, want gpt-4o-mini", s)
	}
}
