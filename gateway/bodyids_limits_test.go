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
