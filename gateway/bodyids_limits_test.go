package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// onlyReader hides a body's length: the client sends it chunked.
type onlyReader struct{ io.Reader }

// jsonBodyOf is a JSON body of n bytes (a vector store's file whose
// attribute holds a long string).
func jsonBodyOf(n int) []byte {
	head, tail := `{"file_id":"file-unknown","attributes":{"note":"`, `"}}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// TestGatewayBoundsJSONBodiesReadForIDsByMaxBody: a JSON body posted to
// an owned family's path, read whole to check the ids it names, is held
// up to limits.max_body (4 MiB by default), not limits.max_upload (512
// MiB): a 6 MiB JSON body — its length said, or chunked — is an
// OpenAI-shaped 413 naming limits.max_body, the upstream not asked. Before, the
// gateway read and held the whole body (up to 512 MiB a request) and
// passed it on. A body under max_body passes.
func TestGatewayBoundsJSONBodiesReadForIDsByMaxBody(t *testing.T) {
	up, a, _ := bodyIDsEnv(t, false)
	ctx := context.Background()
	pay := newObjectAPI(t, a, paymentsKey, "payments")
	vs := pay.create(3)
	big := jsonBodyOf(6 << 20)

	before := up.n.Load()
	var out json.RawMessage
	err := pay.c.Post(ctx, "vector_stores/"+vs+"/files", nil, &out, option.WithRequestBody("application/json", big))
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Message, "max_body") {
		t.Errorf("a 6 MiB JSON body of known length: %v, want a 413 naming limits.max_body", err)
	}
	if n := up.n.Load() - before; n != 0 {
		t.Errorf("a 6 MiB JSON body of known length: the upstream got %d requests", n)
	}

	// Chunked: its length unknown until it is read.
	body := onlyReader{bytes.NewReader(big)}
	req, _ := http.NewRequest(http.MethodPost, a+"/v1/vector_stores/"+vs+"/files", body)
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+paymentsKey)
	req.Header.Set("Content-Type", "application/json")
	before = up.n.Load()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a chunked 6 MiB JSON body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "max_body") || !strings.Contains(string(b), `"request_too_large"`) {
		t.Errorf("a chunked 6 MiB JSON body: %d %s, want a 413 request_too_large naming limits.max_body", resp.StatusCode, b)
	}
	if n := up.n.Load() - before; n != 0 {
		t.Errorf("a chunked 6 MiB JSON body: the upstream got %d requests", n)
	}

	// Under max_body: passed.
	before = up.n.Load()
	if err := pay.c.Post(ctx, "vector_stores/"+vs+"/files", nil, &out, option.WithRequestBody("application/json", jsonBodyOf(3<<20))); err != nil {
		t.Errorf("a 3 MiB JSON body: %v", err)
	}
	if up.n.Load() == before {
		t.Errorf("a 3 MiB JSON body: the upstream was not asked")
	}
}

// checkResponsesSubEndpointsIsolated: payments' calls of the Responses
// API's endpoints that take a call's input — POST
// /v1/responses/input_tokens and /v1/responses/compact — naming devops'
// file, vector store, fine-tuned model, conversation or response are
// refused with its 404 before the upstream; devops' same calls pass.
func checkResponsesSubEndpointsIsolated(t *testing.T, up *countedStore, a, b string) {
	ctx := context.Background()
	devA, devB, payB := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	file, vs, conv, job := devA.create(0), devA.create(3), devA.create(4), devA.create(7)
	model := "ft:gpt-4o-mini-2024-07-18:org::" + job
	up.succeedJob(job, model)
	if j, err := devA.c.FineTuning.Jobs.Get(ctx, job); err != nil || j.FineTunedModel != model {
		t.Fatalf("devops retrieves its job: %+v %v", j, err)
	}
	resp, err := devA.c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	if err != nil {
		t.Fatalf("devops makes a response: %v", err)
	}
	bodies := []struct {
		what, want string
		body       map[string]any
	}{
		{"an input file", "No such File object: " + file, map[string]any{"model": "gpt-4o-mini", "input": []any{map[string]any{"role": "user",
			"content": []any{map[string]any{"type": "input_file", "file_id": file}}}}}},
		{"a file search", "No vector store found with id '" + vs + "'.", map[string]any{"model": "gpt-4o-mini", "input": "search",
			"tools": []any{map[string]any{"type": "file_search", "vector_store_ids": []string{vs}}}}},
		{"a fine-tuned model", "The model `" + model + "` does not exist or you do not have access to it.", map[string]any{"model": model, "input": "hi"}},
		{"a conversation", "Conversation with id '" + conv + "' not found.", map[string]any{"model": "gpt-4o-mini", "input": "hi", "conversation": conv}},
		{"a previous response", "Response with id '" + resp.ID + "' not found.", map[string]any{"model": "gpt-4o-mini", "input": "hi", "previous_response_id": resp.ID}},
	}
	for _, path := range []string{"responses/input_tokens", "responses/compact"} {
		for _, c := range bodies {
			before := up.n.Load()
			var out json.RawMessage
			refusedNotFound(t, "payments: "+path+" with "+c.what, c.want, payB.c.Post(ctx, path, c.body, &out))
			if n := up.n.Load() - before; n != 0 {
				t.Errorf("payments: %s with %s: the upstream got %d requests", path, c.what, n)
			}
			before = up.n.Load()
			err := devB.c.Post(ctx, path, c.body, &out)
			var ae *openai.Error
			if err != nil && !(errors.As(err, &ae) && ae.Message == "unknown path") || up.n.Load() == before {
				t.Errorf("devops: %s with %s: %v (upstream asked %v)", path, c.what, err, up.n.Load() > before)
			}
		}
	}
}

// TestGatewayChecksIDsOfResponsesSubEndpoints: POST
// /v1/responses/input_tokens and /v1/responses/compact read a call's
// input as POST /v1/responses does; another team's objects named there
// are refused. Before, payments' 10 such calls reached the upstream.
func TestGatewayChecksIDsOfResponsesSubEndpoints(t *testing.T) {
	up, a, b := bodyIDsEnv(t, false)
	checkResponsesSubEndpointsIsolated(t, up, a, b)
}

// TestGatewayChecksIDsOfResponsesSubEndpointsOverReplicas: the same, the
// objects made through one replica, named through another sharing Redis.
func TestGatewayChecksIDsOfResponsesSubEndpointsOverReplicas(t *testing.T) {
	up, a, b := bodyIDsEnv(t, true)
	checkResponsesSubEndpointsIsolated(t, up, a, b)
}
