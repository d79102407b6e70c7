package gateway_test

import (
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// The provider's 429 insufficient_quota (billing, not a rate: no retry of
// it ever passes) reaches the gateway's client with X-Should-Retry:
// false, as the gateway's own budget refusal does: openai-go (as the
// Python and Node SDKs) retries a 429 twice by default unless told not to,
// and each retry went to the provider again.
// The same holds for a quota error in a 200 body (as some compatible
// servers answer), which the gateway answers as the 429 it stands for.
func TestGatewayProviderQuotaIsNotRetriedByTheSDK(t *testing.T) {
	for name, reply := range map[string]openaitest.Reply{
		"429":     openaitest.InsufficientQuota(),
		"in band": {Body: []byte(`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`)},
	} {
		t.Run(name, func(t *testing.T) {
			e := start(t, nil, "")
			e.upstream.On().Reply(reply)
			oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL(e.url+"/v1/"), option.WithMaxRetries(2))
			_, err := oc.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			var oe *openai.Error
			if !errors.As(err, &oe) || oe.StatusCode != 429 || oe.Code != "insufficient_quota" {
				t.Fatalf("err %v, want the provider's 429 insufficient_quota", err)
			}
			if got := oe.Response.Header.Get("X-Should-Retry"); got != "false" {
				t.Errorf("X-Should-Retry %q, want false", got)
			}
			if n := e.upstream.Count(); n != 1 {
				t.Errorf("the provider was sent %d requests, want 1 (a spent quota is not retried)", n)
			}
		})
	}
}
