package middleware

import "context"

type fixedModelKey struct{}

// WithFixedModel marks the calls of ctx as served by one model whatever
// their request names: the caller's endpoint decides the model (an Azure
// OpenAI deployment, whose URL names it, named otherwise than its model).
// No layer moves such a call to another model: the router keeps the
// requested model, the fallback chain tries no other, a budget refuses
// rather than downgrade. The go-openai transport sets it.
func WithFixedModel(ctx context.Context) context.Context {
	return context.WithValue(ctx, fixedModelKey{}, true)
}

// FixedModel reports whether ctx's calls are served by the model they
// name only (WithFixedModel).
func FixedModel(ctx context.Context) bool {
	v, _ := ctx.Value(fixedModelKey{}).(bool)
	return v
}
