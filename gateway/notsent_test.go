package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/openai/openai-go/v3"
)

// TestGatewayCallsThatNeverReachedTheUpstreamAreNotCharged: an upstream
// that cannot be reached (its connections hang, as when a firewall drops
// them) times every call out before its request is written. The provider
// never had the requests and bills nothing: a chat call, a Responses call
// and an embeddings call so ended are charged nothing in the team's
// ledger, so that an outage does not drain a budget with charges no
// provider made. (Fake time: synctest.)
func TestGatewayCallsThatNeverReachedTheUpstreamAreNotCharged(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	calls := map[string]func(c *openai.Client) error{
		"chat": func(c *openai.Client) error {
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hang")}, MaxTokens: openai.Int(100)})
			return err
		},
		"responses": func(c *openai.Client) error {
			_, err := c.Responses.New(context.Background(), responsesHang())
			return err
		},
		"embeddings": func(c *openai.Client) error {
			_, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "text-embedding-3-small",
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hang")}})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Dials until the dial's context ends, or the test does
				// (net/http may go on dialing for its pool after the call
				// gave up; a bubble ends only when its goroutines do).
				ended := make(chan struct{})
				unreachable := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					select {
					case <-ctx.Done():
						return nil, ctx.Err()
					case <-ended:
						return nil, errors.New("unreachable")
					}
				}}
				defer func() {
					close(ended)
					unreachable.CloseIdleConnections()
					synctest.Wait()
				}()
				pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": unansweredPolicy}
				srv, tr, served := servePipe(t, writeFiles(t, "http://upstream.invalid/v1", pols, ""), unreachable, slog.New(slog.DiscardHandler))
				defer func() {
					tr.CloseIdleConnections()
					_ = srv.Shutdown(context.Background())
					<-served
				}()
				e := &env{url: "http://gateway", client: &http.Client{Transport: tr}}
				err := call(pipeClient(e))
				var ae *openai.Error
				if !errors.As(err, &ae) || ae.StatusCode != http.StatusGatewayTimeout {
					t.Fatalf("err %v, want the gateway's 504 timeout", err)
				}
				synctest.Wait()
				if sp := e.spend(t); sp.SpentTokens != 0 || sp.SpentUSD != "0.000000" || sp.ReservedUSD != "0.000000" {
					t.Errorf("spend %+v: a call that never reached the upstream was charged", sp)
				}
			})
		})
	}
}
