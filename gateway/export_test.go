package gateway

// SetAnswerBounds sets how much of a Responses answer and of an
// embeddings answer the gateway reads to charge them, and returns a
// function that restores them (tests of answers over the bounds, which
// would otherwise need answers of tens of megabytes).
func SetAnswerBounds(responses, embeddings int) (restore func()) {
	r, e := maxResponsesEvent, maxEmbeddingsAnswer
	maxResponsesEvent, maxEmbeddingsAnswer = responses, embeddings
	return func() { maxResponsesEvent, maxEmbeddingsAnswer = r, e }
}
