package gateway_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// notifyHandler signals every log record whose message is msg.
type notifyHandler struct {
	msg string
	ch  chan struct{}
}

func (h *notifyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *notifyHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h *notifyHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *notifyHandler) WithGroup(string) slog.Handler      { return h }

// The gateway file is watched: replacing it (as an editor or a ConfigMap
// update does, by a rename) reloads its keys without SIGHUP nor Reload —
// the key added is accepted, the key removed refused at once (its
// memoized lookup goes with the old key set).
func TestGatewayReloadsKeysWhenTheFileChanges(t *testing.T) {
	reloaded := &notifyHandler{msg: "tokenwise/gateway: reloaded", ch: make(chan struct{}, 1)}
	e := start(t, nil, "", gateway.WithLogger(slog.New(reloaded)))
	const newKey = "sk-tw-ops-new-key-0123456789"
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	e.upstream.Default(openaitest.Text("fine"))
	if resp := e.do(t, "POST", "/v1/chat/completions", newKey, body); resp.StatusCode != 401 {
		t.Fatalf("a key not yet in the file: status %d, want 401", resp.StatusCode)
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body); resp.StatusCode != 200 {
		t.Fatalf("a key in the file: status %d, want 200", resp.StatusCode)
	}
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(b), "{name: devops-key, team: devops, sha256: "+gateway.HashKey(devopsKey)+"}",
		"{name: ops-key, team: devops, sha256: "+gateway.HashKey(newKey)+"}", 1)
	if next == string(b) {
		t.Fatal("the test's gateway file has no devops key line")
	}
	tmp := filepath.Join(filepath.Dir(e.cfgPath), ".gateway.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloaded.ch:
	case <-time.After(10 * time.Second): // a guard against a hang, not a timing assertion
		t.Fatal("the gateway did not reload its file after it changed")
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", newKey, body); resp.StatusCode != 200 {
		t.Fatalf("the key added: status %d, want 200", resp.StatusCode)
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body); resp.StatusCode != 401 {
		t.Fatalf("the key removed: status %d, want 401", resp.StatusCode)
	}
}
