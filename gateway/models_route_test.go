package gateway_test

import (
	"bytes"
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

// TestGatewaySendsOtherCallsToTheirModelsUpstream: with two upstreams,
// a call of an endpoint the gateway passes through without policing it —
// a legacy completion, a moderation (JSON), a transcription (a multipart
// form, its model after the audio file, as openai-go writes it) — goes to
// the upstream that serves the model it names, with that upstream's key,
// its body whole; one that names no model the gateway knows goes to the
// first. Before, every such call went to the first upstream, which
// answered 404 for the other upstream's models.
func TestGatewaySendsOtherCallsToTheirModelsUpstream(t *testing.T) {
	const keyB = "sk-upstream-b-99887766554433221100ffeeddcc"
	t.Setenv(upstreamEnv, upstreamKey)
	t.Setenv("TOKENWISE_GATEWAY_TEST_UPSTREAM_B", keyB)
	type call struct {
		path, auth string
		size       int
	}
	got := map[string][]call{}
	var mu sync.Mutex
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			mu.Lock()
			got[name] = append(got[name], call{r.URL.Path, r.Header.Get("Authorization"), int(n)})
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/v1/completions":
				_, _ = io.WriteString(w, `{"id":"c","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"`+name+`","finish_reason":"stop"}]}`)
			case "/v1/moderations":
				_, _ = io.WriteString(w, `{"id":"m","model":"m","results":[{"flagged":false}]}`)
			default:
				_, _ = io.WriteString(w, `{"text":"`+name+`"}`)
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := upstream("a"), upstream("b")
	e := serveFile(t, twoUpstreams(t, a.URL+"/v1", b.URL+"/v1", "local-llama, local-whisper", "version: 1\nname: devops\n"))
	oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(0))
	ctx := t.Context()

	for _, c := range [][2]string{{"local-llama", "b"}, {"gpt-3.5-turbo-instruct", "a"}} {
		comp, err := oc.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(c[0]),
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hi")}})
		if err != nil || len(comp.Choices) != 1 || comp.Choices[0].Text != c[1] {
			t.Errorf("a completion of %s: %v %v, want it from upstream %s", c[0], comp.RawJSON(), err, c[1])
		}
	}
	if _, err := oc.Moderations.New(ctx, openai.ModerationNewParams{Model: "local-llama",
		Input: openai.ModerationNewParamsInputUnion{OfString: openai.String("hi")}}); err != nil {
		t.Errorf("a moderation: %v", err)
	}
	audio := bytes.Repeat([]byte{0x52, 0x49, 0x46, 0x46}, 64<<10) // 256 KiB
	tr, err := oc.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
		File: openai.File(bytes.NewReader(audio), "a.wav", "audio/wav"), Model: "local-whisper"})
	if err != nil || tr.Text != "b" {
		t.Errorf("a transcription with local-whisper: %v %v, want it from upstream b", tr.RawJSON(), err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, c := range got["a"] {
		if c.auth != "Bearer "+upstreamKey {
			t.Errorf("upstream a got %s with %q", c.path, c.auth)
		}
	}
	var paths []string
	for _, c := range got["b"] {
		if c.auth != "Bearer "+keyB {
			t.Errorf("upstream b got %s with %q", c.path, c.auth)
		}
		if c.path == "/v1/audio/transcriptions" && c.size < len(audio) {
			t.Errorf("upstream b got a transcription of %d bytes, want the form whole (> %d)", c.size, len(audio))
		}
		paths = append(paths, c.path)
	}
	if want := []string{"/v1/completions", "/v1/moderations", "/v1/audio/transcriptions"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("upstream b got %q, want %q (a got %v)", paths, want, got["a"])
	}
}
