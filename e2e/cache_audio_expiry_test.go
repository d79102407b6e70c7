package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/policies"
)

// TestCachedAudioAnswerExpiresWithItsAudio: an answer with audio output
// names its audio by an id the provider keeps until the answer's
// audio.expires_at, for the next turn to refer to ({"role": "assistant",
// "audio": {"id": ...}}). The cache keeps such an answer no longer than
// that, whatever its TTL: through go-openai, a hit before the expiry, a
// new call after it (whose fresh id the next turn can use); an answer
// whose audio has already expired is not kept.
func TestCachedAudioAnswerExpiresWithItsAudio(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := openaitest.New()
		body := func(expires time.Time) []byte {
			return fmt.Appendf(nil, `{"id":"chatcmpl-a","object":"chat.completion","created":1,"model":"gpt-4o-audio-preview",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"audio":{"id":"audio_%d","data":"UklGRg==","expires_at":%d,"transcript":"The disk is fine."}},"finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":10,"completion_tokens":30,"total_tokens":40}}`, expires.Unix(), expires.Unix())
		}
		chain := llmwrap.MustBuild(cachePolicy(policies.Cache{TTL: policies.Duration(time.Hour)}))
		client := oai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0),
			option.WithHTTPClient(&http.Client{Transport: twopenai.NewTransport(chain, twopenai.WithBaseTransport(srv.Transport()))}))
		question := "is the disk fine?"
		ask := func() string {
			t.Helper()
			var hr *http.Response
			_, err := client.Chat.Completions.New(context.Background(), oai.ChatCompletionNewParams{
				Model:      "gpt-4o-audio-preview",
				Messages:   []oai.ChatCompletionMessageParamUnion{oai.UserMessage(question)},
				Modalities: []string{"text", "audio"},
				Audio:      oai.ChatCompletionAudioParam{Format: "wav", Voice: oai.ChatCompletionAudioParamVoiceUnion{OfString: oai.String("alloy")}},
			}, option.WithResponseInto(&hr))
			if err != nil {
				t.Fatal(err)
			}
			return hr.Header.Get("X-Tokenwise-Cache")
		}
		srv.Reset()
		srv.Default(openaitest.Reply{Body: body(time.Now().Add(10 * time.Minute))})
		ask()
		time.Sleep(5 * time.Minute) // fake time
		if h := ask(); h != "hit" || srv.Count() != 1 {
			t.Fatalf("before the audio expires: cache header %q, %d provider calls; want a hit", h, srv.Count())
		}
		time.Sleep(6 * time.Minute)
		if h := ask(); h == "hit" || srv.Count() != 2 {
			t.Fatalf("after the audio expired: cache header %q, %d provider calls; want a new call", h, srv.Count())
		}

		// An answer whose audio has expired already is not kept.
		question = "and the memory?"
		srv.Reset()
		srv.Default(openaitest.Reply{Body: body(time.Now().Add(-time.Second))})
		ask()
		if h := ask(); h == "hit" || srv.Count() != 2 {
			t.Fatalf("an answer whose audio had expired: cache header %q, %d provider calls; want it not kept", h, srv.Count())
		}
	})
}
