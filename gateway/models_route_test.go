package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestGatewayRetrievesAModelFromItsUpstream: a model the gateway lists
// (GET /v1/models has every upstream's models) is retrieved, through
// openai-go's Models.Get, from the upstream that serves it, with that
// upstream's key — and a fine-tuned model deleted there (Models.Delete);
// a model no upstream lists goes to the first. Before, every
// /v1/models/{id} went to the first upstream, which answered 404 for the
// other upstreams' models.
func TestGatewayRetrievesAModelFromItsUpstream(t *testing.T) {
	const keyB = "sk-upstream-b-99887766554433221100ffeeddcc"
	t.Setenv(upstreamEnv, upstreamKey)
	t.Setenv("TOKENWISE_GATEWAY_TEST_UPSTREAM_B", keyB)
	got := map[string][]string{} // upstream -> "method path key"
	var mu sync.Mutex
	upstream := func(name, key string, models ...string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			got[name] = append(got[name], r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			for _, m := range models {
				if r.URL.Path == "/v1/models/"+m && r.Header.Get("Authorization") == "Bearer "+key {
					if r.Method == http.MethodDelete {
						_, _ = io.WriteString(w, `{"id":"`+m+`","object":"model","deleted":true}`)
						return
					}
					_, _ = io.WriteString(w, `{"id":"`+m+`","object":"model","created":1,"owned_by":"`+name+`"}`)
					return
				}
			}
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"message":"The model does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}`)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a := upstream("a", upstreamKey, "gpt-4o", "unlisted")
	b := upstream("b", keyB, "local-llama", "ft:gpt-4o-mini:acme::x1")
	e := serveFile(t, twoUpstreams(t, a.URL+"/v1", b.URL+"/v1", "local-llama, 'ft:gpt-4o-mini:acme::x1'", "version: 1\nname: devops\n"))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ctx := t.Context()
	for _, c := range [][2]string{{"local-llama", "b"}, {"gpt-4o", "a"}, {"unlisted", "a"}} {
		m, err := oc.Models.Get(ctx, c[0])
		if err != nil || m.ID != c[0] || m.OwnedBy != c[1] {
			t.Errorf("Models.Get(%q): %+v %v, want it from upstream %s", c[0], m, err, c[1])
		}
	}
	d, err := oc.Models.Delete(ctx, "ft:gpt-4o-mini:acme::x1")
	if err != nil || !d.Deleted {
		t.Errorf("Models.Delete of upstream b's fine-tuned model: %+v %v", d, err)
	}
	wantA := []string{"GET /v1/models/gpt-4o Bearer " + upstreamKey, "GET /v1/models/unlisted Bearer " + upstreamKey}
	wantB := []string{"GET /v1/models/local-llama Bearer " + keyB, "DELETE /v1/models/ft:gpt-4o-mini:acme::x1 Bearer " + keyB}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got["a"], wantA) || !reflect.DeepEqual(got["b"], wantB) {
		t.Errorf("upstream a got %q, b got %q; want %q and %q", got["a"], got["b"], wantA, wantB)
	}
}
