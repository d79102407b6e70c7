package langchaingo_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/llms/openai"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestAModelThatFailedToBuildIsNamed: a snippet that drops openai.New's
// error
//
//	strong, _ := openai.New(openai.WithModel("gpt-4o"))
//	cheap, _ := openai.New(openai.WithModel("gpt-4o-mini"))
//	llm := twlc.New(twlc.Models{"gpt-4o": strong, "gpt-4o-mini": cheap}, chain, ...)
//
// on a machine without OPENAI_API_KEY hands twlc.New a nil *openai.LLM. The
// call is refused with an error (ErrNilModel) that names the model and the
// likely cause, not run into a recovered panic ("tokenwise/middleware:
// panic in chain: runtime error: invalid memory address or nil pointer
// dereference") that names neither.
func TestAModelThatFailedToBuildIsNamed(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	os.Unsetenv("OPENAI_API_KEY")
	strong, err := openai.New(openai.WithModel("gpt-4o"))
	if err == nil || strong != nil {
		t.Skipf("openai.New without a key: %v, %v", strong, err)
	}
	cheap, _ := openai.New(openai.WithModel("gpt-4o-mini"))
	chain, err := llmwrap.Build(policies.Default())
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o": strong, "gpt-4o-mini": cheap}, chain, twlc.WithDefaultModel("gpt-4o"))
	ctx, _ := middleware.StartRun(context.Background(), "no-key")
	_, err = llms.GenerateFromSinglePrompt(ctx, llm, "hi")
	if err == nil {
		t.Fatal("a call with a nil model succeeded")
	}
	if errors.Is(err, middleware.ErrPanic) || !strings.Contains(err.Error(), "gpt-4o") {
		t.Errorf("a nil model's call: %v; want an error naming the model, not a recovered panic", err)
	}
	if !errors.Is(err, twlc.ErrNilModel) || !strings.Contains(err.Error(), "dropped") {
		t.Errorf("a nil model's call: %v; want ErrNilModel and the likely cause", err)
	}
}

// TestANilModelFailsEveryCall: a nil model (nil, or a nil pointer) beside a
// working one fails every call, the working model's too, with the nil
// one's name: a fallback model whose constructor failed is found on the
// first call, not on the day the fallback is needed.
func TestANilModelFailsEveryCall(t *testing.T) {
	var typedNil *openai.LLM
	for _, nilModel := range []llms.Model{nil, typedNil} {
		good := &fakeModel{}
		llm := twlc.New(twlc.Models{"gpt-4o": good, "gpt-4o-mini": nilModel}, nil, twlc.WithDefaultModel("gpt-4o"))
		_, err := llms.GenerateFromSinglePrompt(context.Background(), llm, "hi")
		if !errors.Is(err, twlc.ErrNilModel) || !strings.Contains(err.Error(), `"gpt-4o-mini"`) {
			t.Errorf("nil model %T: err = %v; want ErrNilModel naming gpt-4o-mini", nilModel, err)
		}
		if good.calls != 0 {
			t.Errorf("nil model %T: the working model was called", nilModel)
		}
		_, err = twlc.Provider(twlc.Models{"gpt-4o": good, "gpt-4o-mini": nilModel}).Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
		if !errors.Is(err, twlc.ErrNilModel) {
			t.Errorf("Provider with nil model %T: err = %v; want ErrNilModel", nilModel, err)
		}
	}
}

// fakeModel answers "ok" and counts its calls.
type fakeModel struct{ calls int }

func (f *fakeModel) GenerateContent(context.Context, []llms.MessageContent, ...llms.CallOption) (*llms.ContentResponse, error) {
	f.calls++
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: "ok", StopReason: "stop"}}}, nil
}

func (f *fakeModel) Call(ctx context.Context, prompt string, options ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, f, prompt, options...)
}
