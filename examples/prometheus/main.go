// Command prometheus shows tokenwise's metrics in Prometheus: a chain with
// the OpenTelemetry observer (adapters/otel) whose meter provider is backed
// by the OpenTelemetry Prometheus exporter, served by client_golang's
// promhttp on /metrics.
//
// It makes a few calls through the real go-openai client against an
// embedded scripted provider (no network, no API key): a miss, a cache hit
// and a call to a second model. Then it serves /metrics:
//
//	go run ./examples/prometheus                 # serve on :9464 until Ctrl-C
//	go run ./examples/prometheus -once           # print the scrape and exit
//	curl -s localhost:9464/metrics | grep -E 'gen_ai|tokenwise'
//
// The series: gen_ai_client_token_usage (histogram, by gen_ai_token_type),
// gen_ai_client_operation_duration_seconds (histogram), tokenwise_cost_total
// (pico-USD, 10^-12 dollars, by model and team),
// tokenwise_cache_lookups_total (by status) and tokenwise_cache_saved_total
// (pico-USD saved by cache hits).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goopenai "github.com/sashabaranov/go-openai"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twotel "github.com/tokenwise/tokenwise/adapters/otel"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

const policy = `version: 1
name: devops
cache: {enabled: true, ttl: 1h, deterministic_only: false}
`

func main() {
	addr := flag.String("addr", ":9464", "address to serve /metrics on")
	once := flag.Bool("once", false, "print the scraped metrics and exit instead of serving")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *once, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, once bool, out io.Writer) error {
	d, err := setup()
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.calls(ctx); err != nil {
		return err
	}
	if once {
		return scrape(ctx, d.handler, out)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.handler)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "serving metrics on http://%s/metrics (Ctrl-C to stop)\n", addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// demo is the wired-up example: the scripted provider, the go-openai client
// over the tokenwise chain, and the /metrics handler.
type demo struct {
	srv     *openaitest.Server
	client  *goopenai.Client
	handler http.Handler
	mp      *sdkmetric.MeterProvider
}

func setup() (*demo, error) {
	// A registry of our own rather than the global one, so that the example
	// can be built twice in one process (its test does).
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := twotel.New(twotel.WithMeterProvider(mp))
	if err != nil {
		return nil, err
	}
	p, err := policies.LoadBytes([]byte(policy), "policy.yaml")
	if err != nil {
		return nil, err
	}
	chain, err := llmwrap.Build(p, llmwrap.WithObserver(obs))
	if err != nil {
		return nil, err
	}
	srv := openaitest.New()
	srv.On(openaitest.LastContains("disk")).Reply(openaitest.Text("The disk is 95% full: /var/log holds 20GB of old logs."))
	srv.On().Reply(openaitest.Text("Memory is at 41%."))
	cfg := goopenai.DefaultConfig("scripted")
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = twopenai.NewHTTPClient(chain, twopenai.WithBaseTransport(srv.Transport()))
	return &demo{srv: srv, client: goopenai.NewClientWithConfig(cfg), mp: mp,
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}, nil
}

func (d *demo) close() {
	_ = d.mp.Shutdown(context.Background())
	d.srv.Close()
}

// calls makes three calls for team devops: gpt-4o-mini (a miss), the same
// again (a cache hit) and gpt-4o.
func (d *demo) calls(ctx context.Context) error {
	ctx = middleware.WithTeam(ctx, "devops")
	for _, c := range []struct{ model, prompt string }{
		{"gpt-4o-mini", "Why is the disk full?"},
		{"gpt-4o-mini", "Why is the disk full?"},
		{"gpt-4o", "How much memory is used?"},
	} {
		_, err := d.client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: c.model,
			Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: c.prompt}}})
		if err != nil {
			return err
		}
	}
	return nil
}

// scrape fetches /metrics over a loopback HTTP server, as Prometheus would,
// and prints the gen_ai and tokenwise series.
func scrape(ctx context.Context, h http.Handler, out io.Writer) error {
	ts := httptest.NewServer(h)
	defer ts.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if strings.HasPrefix(name, "gen_ai_") || strings.HasPrefix(name, "tokenwise_") {
			fmt.Fprintln(out, line)
		}
	}
	return sc.Err()
}
