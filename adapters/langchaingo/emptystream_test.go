package langchaingo_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/middleware"
)

// emptyStreams are 200 event streams that carry no chunk: nothing at all,
// only [DONE], only comments or blank lines, comments then [DONE].
var emptyStreams = []string{"", "data: [DONE]\n\n", ": keep-alive\n\n", "\n\n\n", ": ping\n\ndata: [DONE]\n\n", "event: done\ndata: [DONE]\n\n"}

// TestEmptyStreamIsNeverASuccess: a 200 event stream without a single
// chunk (a proxy that drops the answer, a server that ends at once, only
// "data: [DONE]") is an error through every way langchaingo reaches the
// server, streamed or not, with or without twlc.New: never an empty
// answer returned as a success, which the caller would take for the
// model's. Through twlc.New with NewTransport (alone or over the go-openai
// Transport), and through the bare backend's stream with NewTransport, it
// is a typed one (middleware.ErrStreamCut or ErrMalformed), not a network
// failure.
func TestEmptyStreamIsNeverASuccess(t *testing.T) {
	for i, body := range emptyStreams {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		for _, be := range []struct {
			name string
			rt   func() http.RoundTripper
		}{
			{"NewTransport", func() http.RoundTripper { return twlc.NewTransport(srv.Client().Transport) }},
			{"NewTransport over openai Transport", func() http.RoundTripper {
				return twlc.NewTransport(twopenai.NewTransport(nil, twopenai.WithBaseTransport(srv.Client().Transport)))
			}},
			{"openai Transport", func() http.RoundTripper {
				return twopenai.NewTransport(nil, twopenai.WithBaseTransport(srv.Client().Transport))
			}},
		} {
			for _, wrapped := range []bool{false, true} {
				for _, stream := range []bool{true, false} {
					t.Run(fmt.Sprintf("body%d/%s/twlc.New=%v/stream=%v", i, be.name, wrapped, stream), func(t *testing.T) {
						var llm llms.Model
						llm, err := openai.New(openai.WithBaseURL(srv.URL), openai.WithToken("test"), openai.WithModel("gpt-4o"),
							openai.WithHTTPClient(&http.Client{Transport: be.rt()}))
						if err != nil {
							t.Fatal(err)
						}
						if wrapped {
							llm = twlc.New(twlc.Models{"gpt-4o": llm}, nil)
						}
						var opts []llms.CallOption
						if stream {
							opts = append(opts, streaming())
						}
						resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("q")}, opts...)
						if err == nil {
							t.Fatalf("body %q: an empty success: %+v", body, resp)
						}
						// The bare backend returns its client's error as an
						// untyped fixed text, and a non-stream answer it
						// cannot decode as a JSON error; twlc.New over the
						// go-openai Transport alone has no slot to read the
						// transport's error from (the README says so): an
						// error, not a typed one.
						typed := (wrapped && be.name != "openai Transport") || (!wrapped && be.name == "NewTransport" && stream)
						if typed && !errors.Is(err, middleware.ErrStreamCut) && !errors.Is(err, middleware.ErrMalformed) {
							t.Fatalf("body %q: err %v (%T), want ErrStreamCut or ErrMalformed", body, err, err)
						}
					})
				}
			}
		}
	}
}
