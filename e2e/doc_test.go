// Package e2e holds tokenwise's end-to-end tests: the layers driven through
// real clients (langchaingo, openai-go, go-openai) over HTTP against the
// scripted server adapters/openai/openaitest, and the observers with the
// OpenTelemetry SDK. The layer packages test themselves with fakes and
// middlewaretest; what needs a client library with heavy dependencies lives
// here, in a module of its own, so that the root module does not require
// them.
package e2e
