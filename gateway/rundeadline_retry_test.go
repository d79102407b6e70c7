package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// TestGatewayRunPastItsDeadlineIsNotRetried: a call of a run past its
// deadline (limits.run_timeout) can never be served: the gateway's 504
// timeout says so with x-should-retry: false, as its refusals of a run's
// call limit and of a budget do, and openai-go (with its default two
// retries) does not send it again — a chat call as a Responses call.
// Before, the SDK retried it twice, with backoff, each refused the same.
func TestGatewayRunPastItsDeadlineIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := openaitest.New()
		up.Default(openaitest.Text("ok"))
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
			"devops.yaml": "version: 1\nname: devops\nlimits: {run_timeout: 1m}\n"}
		t.Setenv(upstreamEnv, upstreamKey)
		srv, tr, served := servePipe(t, writeFiles(t, up.URL, pols, ""), up.Transport(), slog.New(slog.DiscardHandler))
		defer func() {
			tr.CloseIdleConnections()
			_ = srv.Shutdown(context.Background())
			<-served
		}()
		sent := 0
		count := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			sent++
			return next(r)
		})
		oc := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
			option.WithHTTPClient(&http.Client{Transport: tr}), option.WithHeader(gateway.RunIDHeader, "run-1"), count)
		chat := func() error {
			_, err := oc.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
			return err
		}
		if err := chat(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		for name, call := range map[string]func() error{
			"chat": chat,
			"responses": func() error {
				_, err := oc.Responses.New(t.Context(), responses.ResponseNewParams{Model: "gpt-4o-mini",
					Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
				return err
			},
		} {
			sent = 0
			err := call()
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusGatewayTimeout || ae.Code != "timeout" ||
				ae.Response.Header.Get("X-Should-Retry") != "false" || sent != 1 {
				t.Errorf("%s past the run's deadline: %v, sent %d times; want the gateway's 504 timeout with x-should-retry: false, sent once", name, err, sent)
			}
		}
	})
}
