package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/openai/openai-go/v3/option"
)

// TestGatewayRefusesAnotherTeamsFileAnywhereInAChatBody: a chat call
// whose body names another team's file where the core does not keep it —
// a stray "file" member of a text or image part, a message's own member —
// is refused with the file's 404 before the upstream, as the README says
// of an id named "at any depth" of a chat call's body: the upstream gets
// these bytes as they came (an unchanged message's wire JSON).
func TestGatewayRefusesAnotherTeamsFileAnywhereInAChatBody(t *testing.T) {
	up, a, b := bodyIDsEnv(t, false)
	ctx := context.Background()
	dev, pay := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	file := dev.create(0)
	want := fmt.Sprintf("No such File object: %s", file)
	q := strconvQuote(file)
	for _, msg := range []string{
		`{"role":"user","content":[{"type":"text","text":"read it","file":{"file_id":` + q + `}}]}`,
		`{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"},"file":{"file_id":` + q + `}}]}`,
		`{"role":"user","content":"read it","file_id":` + q + `}`,
		`{"role":"user","content":[{"type":"text","text":"read it"}],"attachments":[{"file_id":` + q + `}]}`,
	} {
		body := `{"model":"gpt-4o-mini","messages":[` + msg + `]}`
		before := up.n.Load()
		var out json.RawMessage
		err := pay.c.Post(ctx, "chat/completions", nil, &out, option.WithRequestBody("application/json", []byte(body)))
		refusedNotFound(t, "payments: "+body, want, err)
		if n := up.n.Load() - before; n != 0 {
			t.Errorf("payments: %s: the upstream got %d requests", body, n)
		}
	}
}
