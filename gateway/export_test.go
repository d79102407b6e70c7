package gateway

// SetAnswerBounds sets how much of a Responses answer the gateway reads
// to charge it, and returns a function that restores it (tests of
// answers over the bound, which would otherwise need answers of tens of
// megabytes).
func SetAnswerBounds(responses int) (restore func()) {
	r := maxResponsesEvent
	maxResponsesEvent = responses
	return func() { maxResponsesEvent = r }
}
