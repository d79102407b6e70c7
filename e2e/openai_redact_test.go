package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sashabaranov/go-openai"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
	"github.com/tokenwise/tokenwise/policies"
)

// TestProviderErrorEchoingTheKeyIsRedacted: a provider answers 401 with a
// body and headers that echo the caller's key. The real go-openai client
// goes through the Transport with a policy chain (cache, fallback),
// slog at debug level, OTel (in-memory exporters), the trace recorder and a
// run; no sink — the caller's error, events and the causes of their errors,
// logs, spans, metrics, the trace, the run report — holds the key. Two
// keys: one shaped like OpenAI's, and one of a local server that only the
// request's own Authorization header identifies.
func TestProviderErrorEchoingTheKeyIsRedacted(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"sk-proj-Zq8XwL3vN0tQ5rYb7KpA2mE9hJc4UfGd", "local-server-key-7F3a9"} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%.12s/stream=%v", key, stream), func(t *testing.T) {
				testKeyNeverReachesASink(t, key, stream)
			})
		}
	}
}

func testKeyNeverReachesASink(t *testing.T, key string, stream bool) {
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{
		Status: http.StatusUnauthorized,
		Error: &openaitest.APIError{
			Type: "invalid_request_error", Code: "invalid_api_key", Param: key,
			Message: "Incorrect API key provided: " + key + ". Request had Authorization: Bearer " + key,
		},
		Header: http.Header{"X-Echo-Key": {key}, "Www-Authenticate": {`Bearer realm="` + key + `"`}},
	})

	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	ot, err := twotel.New(
		twotel.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
		twotel.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	events := &eventSink{}
	var trace bytes.Buffer
	rec := observe.NewRecorder(&trace)
	pol, err := policies.LoadBytes([]byte(`version: 1
cache: {enabled: true, ttl: 1h}
fallback: {models: [gpt-4o, gpt-4o-mini]}
`), "redact.yaml")
	if err != nil {
		t.Fatal(err)
	}
	chain := middleware.Chain(rec.Middleware(), llmwrap.MustBuild(pol,
		llmwrap.WithObserver(observe.NewSlog(logger)), llmwrap.WithObserver(ot), llmwrap.WithObserver(events),
		llmwrap.WithLogger(logger)))

	cfg := openai.DefaultConfig(key)
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = &http.Client{Transport: twopenai.NewTransport(chain, twopenai.WithBaseTransport(srv.Transport()))}
	client := openai.NewClientWithConfig(cfg)
	ctx, run := middleware.StartRun(context.Background(), "redact")
	req := openai.ChatCompletionRequest{Model: "gpt-4o", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}
	if stream {
		s, serr := client.CreateChatCompletionStream(ctx, req)
		if serr == nil {
			_, serr = s.Recv()
			s.Close()
		}
		err = serr
	} else {
		_, err = client.CreateChatCompletion(ctx, req)
	}
	if err == nil {
		t.Fatal("the call succeeded")
	}
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusUnauthorized {
		t.Errorf("err = %T %v, want go-openai's *APIError with 401", err, err)
	}
	if srv.Count() == 0 {
		t.Fatal("the provider saw no request")
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	report, err := observe.ReportJSON(run)
	if err != nil {
		t.Fatal(err)
	}

	sinks := map[string]string{
		"caller's error":  errorText(err) + fmt.Sprintf("%+v", apiErr),
		"events":          events.text(),
		"slog":            logs.String(),
		"spans":           spanText(spans.Ended()),
		"metrics":         fmt.Sprintf("%+v", rm),
		"trace":           trace.String(),
		"run report":      observe.Report(run),
		"run report json": string(report),
	}
	for name, text := range sinks {
		if strings.Contains(text, key) {
			t.Errorf("%s holds the key:\n%s", name, text)
		}
	}
	// The sinks did see the failure, masked.
	for _, name := range []string{"caller's error", "events", "slog", "spans", "trace", "run report"} {
		if !strings.Contains(sinks[name], "[REDACTED]") {
			t.Errorf("%s does not show the masked failure:\n%s", name, sinks[name])
		}
	}
}

// eventSink records every event with the full text of its errors.
type eventSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *eventSink) Observe(_ context.Context, e middleware.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, "%s %+v\n", e.Kind(), e)
	// An observer may dig into the causes of an event's error: give them
	// too, for every event type with an Err field.
	v := reflect.Indirect(reflect.ValueOf(e))
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Err"); f.IsValid() && !f.IsNil() {
			s.b.WriteString(errorText(f.Interface().(error)))
		}
	}
}

func (s *eventSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// errorText is the text of err and of every cause in its chain, with the
// body and headers of an *HTTPError and the fields of a ProviderError.
func errorText(err error) string {
	var b strings.Builder
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		b.WriteString(e.Error() + "\n")
		switch x := e.(type) {
		case *twopenai.HTTPError:
			fmt.Fprintf(&b, "%s %v %s\n", x.Body, x.Header, x.Param)
		case *middleware.ProviderError:
			fmt.Fprintf(&b, "%+v\n", *x)
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		}
	}
	walk(err)
	return b.String()
}

func spanText(spans []sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %v %+v\n", s.Name(), s.Attributes(), s.Status())
		for _, e := range s.Events() {
			fmt.Fprintf(&b, "  %s %v\n", e.Name, e.Attributes)
		}
	}
	return b.String()
}
