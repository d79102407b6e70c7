package fallback_test

import (
	"testing"

	"go.uber.org/goleak"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps the events of a chain; safe for concurrent use.
type recorder struct{ middlewaretest.Recorder }

func (r *recorder) finished() []middleware.CallFinished {
	return middlewaretest.Of[middleware.CallFinished](&r.Recorder)
}

func provider(srv *openaitest.Server) middleware.Handler {
	return twopenai.NewProvider(srv.URL, "sk-test", twopenai.WithBaseTransport(srv.Transport()))
}

func user(text string) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: text}}}
}
