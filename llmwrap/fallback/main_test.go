package fallback_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func user(text string) *middleware.Request {
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: text}}}
}
