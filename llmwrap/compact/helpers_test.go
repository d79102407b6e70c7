package compact_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memOffloader is an in-memory artifact store: the excerpt is the first
// lines of the result and an artifact id. It is safe for concurrent use.
type memOffloader struct {
	mu    sync.Mutex
	items map[string]string
	calls int
}

func (o *memOffloader) Offload(_ context.Context, run, tool, content string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.items == nil {
		o.items = map[string]string{}
	}
	o.calls++
	id := fmt.Sprintf("art_%s_%d", run, len(o.items)+1)
	o.items[id] = content
	lines := strings.SplitN(content, "\n", 4)
	head := strings.Join(lines[:min(3, len(lines))], "\n")
	return fmt.Sprintf("%s\n... [%s output stored as artifact %s (%d bytes); read it with read_artifact]", head, tool, id, len(content)), nil
}

// bigResult returns a deterministic tool result of about n bytes.
func bigResult(seed, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%04d-%02d host-%d /var/log/app.log: request %d served in %dms status=%d\n", seed, i%60, seed%7, i*31+seed, (i*seed)%997, 200+(i%3)*100)
	}
	return b.String()[:n]
}

// recorder is a terminal handler that records the requests it serves and
// answers with a fixed text. It is safe for concurrent use.
type recorder struct {
	mu   sync.Mutex
	reqs []*middleware.Request
	fn   func(req *middleware.Request) string
}

func (r *recorder) Handle(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	text := "ok"
	if r.fn != nil {
		text = r.fn(req)
	}
	return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: text},
		FinishReason: middleware.FinishStop, Usage: middleware.Usage{InputTokens: 10, OutputTokens: 5}}, nil
}

func (r *recorder) requests() []*middleware.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*middleware.Request(nil), r.reqs...)
}
