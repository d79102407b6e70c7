package langchaingo

// SetMaxReads lowers what NewTransport reads of an answer (a stream's
// line, a plain answer's body) for a test; the returned func restores them.
func SetMaxReads(line, body int) func() {
	l, b := maxStreamLine, maxAnswerBody
	maxStreamLine, maxAnswerBody = line, int64(body)
	return func() { maxStreamLine, maxAnswerBody = l, b }
}
