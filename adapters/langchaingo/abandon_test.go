package langchaingo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
)

// deafModel is an llms.Model that ignores its context (a model in
// process, a client without deadlines): it streams "early", waits to be
// released, streams "late" and answers. It records what its late
// streaming call returned.
type deafModel struct {
	release chan struct{}
	lateErr chan error // what the late StreamingFunc call returned (streaming calls)
}

func (d deafModel) GenerateContent(ctx context.Context, _ []llms.MessageContent, opts ...llms.CallOption) (*llms.ContentResponse, error) {
	var o llms.CallOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.StreamingFunc != nil {
		if err := o.StreamingFunc(ctx, []byte("early ")); err != nil {
			return nil, err
		}
	}
	<-d.release
	if o.StreamingFunc != nil {
		d.lateErr <- o.StreamingFunc(ctx, []byte("late"))
	}
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "early late", StopReason: "stop"}}}, nil
}

func (d deafModel) Call(ctx context.Context, p string, o ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, d, p, o...)
}

// TestModelIgnoringItsContextIsGivenUpOn: when the context of a call
// ends, the provider returns its error at once even though the inner
// model ignores it; nothing the model streams later reaches the caller's
// func (the model's streaming call is refused), its late answer is
// dropped, and its goroutine ends when it returns.
func TestModelIgnoringItsContextIsGivenUpOn(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := deafModel{release: make(chan struct{}), lateErr: make(chan error, 1)}
				release := sync.OnceFunc(func() { close(d.release) })
				defer release()
				m := twlc.New(twlc.Models{"gpt-4o-mini": d}, nil)
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				var c collector
				var opts []llms.CallOption
				if stream {
					opts = append(opts, llms.WithStreamingFunc(c.fn))
				}
				start := time.Now()
				resp, err := m.GenerateContent(ctx, []llms.MessageContent{llms.TextParts(llms.ChatMessageTypeHuman, "hi")}, opts...)
				if el := time.Since(start); el != 200*time.Millisecond || resp != nil || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("after %v: %v, %v; want context.DeadlineExceeded at the 200ms deadline", el, resp, err)
				}
				release()
				synctest.Wait() // the model returned; its goroutine ended (synctest.Test checks)
				c.mu.Lock()
				got := c.chunks
				c.mu.Unlock()
				if stream {
					if len(got) != 1 || got[0] != "early " {
						t.Errorf("the caller's func got %q, want only what came before the deadline", got)
					}
					if err := <-d.lateErr; err == nil {
						t.Error("the model's late streaming call succeeded, want it refused")
					}
				}
			})
		})
	}
}
