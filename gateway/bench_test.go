package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/gateway"
)

// benchPolicy turns every layer on that a request through the gateway
// meets: run guard, response cache (missed: every prompt differs),
// routing rules, fallback with retry and breaker, a team budget, rate
// limits and timeouts.
const benchPolicy = `version: 1
name: devops
limits: {max_calls: 1000000, run_timeout: 1h}
timeouts: {call: 30s, first_token: 10s, idle: 15s}
budget:
  request: {max_input_tokens: 10000, max_output_tokens: 2000}
  team: {period: monthly, max_usd: 1000000}
cache: {enabled: true, ttl: 1h, max_entries: 100000}
routing:
  default: gpt-4o-mini
  rules:
    - name: cheap-tool-selection
      when: {stage: tool_selection}
      model: gpt-4o-mini
fallback:
  models: [gpt-4o-mini, gpt-4o]
  retry: {max_attempts: 3, base_delay: 200ms}
  breaker: {consecutive_failures: 5, open_for: 30s}
rate_limits:
  models:
    gpt-4o-mini: {rpm: 10000000, tpm: 10000000000}
`

// benchSeq numbers the benchmarks' prompts: every request is distinct, a
// response cache miss.
var benchSeq atomic.Int64

// instantAnswer is the upstream's answer to every request.
var instantAnswer = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Restart the pod."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":5,"total_tokens":45}}`)

// instantUpstream answers every chat completion at once.
func instantUpstream(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(instantAnswer)))
		_, _ = w.Write(instantAnswer)
	})}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// load sends rate requests a second for d to url (open loop: a request
// starts on schedule whether or not the earlier ones are done) and returns
// each request's latency, sorted, and the number of failures.
func load(tb testing.TB, client *http.Client, url, key string, rate int, d time.Duration) ([]time.Duration, int) {
	n := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		body := []byte(`{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"system","content":"You are an SRE assistant."},{"role":"user","content":"Pod web-` + strconv.FormatInt(benchSeq.Add(1), 10) + ` is crash-looping. What should I do?"}]}`)
		wg.Go(func() {
			req, _ := http.NewRequest("POST", url+"/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				lat[i] = -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[i] = time.Since(t0)
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, int(failed.Load())
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// BenchmarkGatewayAddedLatency is the gateway's load benchmark: one Go
// load generator at 2,000 requests/s (TOKENWISE_BENCH_RATE) for 5 s
// (TOKENWISE_BENCH_SECONDS) against a local instant upstream directly,
// then through the gateway with the full policy on, in one run. It
// reports the median and p99 latency of each and the gateway's addition.
//
//	go test -run '^$' -bench GatewayAddedLatency -benchtime 1x ./gateway
func BenchmarkGatewayAddedLatency(b *testing.B) {
	rate, secs := 2000, 5.0
	if v, err := strconv.Atoi(os.Getenv("TOKENWISE_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("TOKENWISE_BENCH_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	d := time.Duration(secs * float64(time.Second))
	b.Setenv(upstreamEnv, upstreamKey)
	upURL := instantUpstream(b)
	cfgPath := writeFiles(b, upURL, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": benchPolicy}, "")
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	gwURL := "http://" + l.Addr().String() + "/v1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	// Warm up both paths (connections, the chain's first calls).
	load(b, client, upURL, upstreamKey, rate, time.Second/2)
	load(b, client, gwURL, devopsKey, rate, time.Second/2)
	b.ResetTimer()
	for range b.N {
		direct, f1 := load(b, client, upURL, upstreamKey, rate, d)
		via, f2 := load(b, client, gwURL, devopsKey, rate, d)
		if f1+f2 > 0 {
			b.Fatalf("%d direct and %d gateway requests failed", f1, f2)
		}
		p50d, p99d, p50g, p99g := pct(direct, .5), pct(direct, .99), pct(via, .5), pct(via, .99)
		b.ReportMetric(float64(p50d.Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(p99d.Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(p50g.Microseconds()), "gateway-p50-µs")
		b.ReportMetric(float64(p99g.Microseconds()), "gateway-p99-µs")
		b.ReportMetric(float64((p50g - p50d).Microseconds()), "added-p50-µs")
		b.ReportMetric(float64((p99g - p99d).Microseconds()), "added-p99-µs")
		b.Logf("%d req/s for %v: direct p50 %v p99 %v; gateway p50 %v p99 %v; added p50 %v p99 %v",
			rate, d, p50d, p99d, p50g, p99g, p50g-p50d, p99g-p99d)
	}
}

// BenchmarkGatewayRoundTrip is one request at a time, directly to the
// instant upstream and through the gateway (full policy): the gateway's
// cost per call on an idle machine, which the load benchmark's figures
// add queueing to.
func BenchmarkGatewayRoundTrip(b *testing.B) {
	b.Setenv(upstreamEnv, upstreamKey)
	upURL := instantUpstream(b)
	cfgPath := writeFiles(b, upURL, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": benchPolicy}, "")
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer func() { _ = srv.Close() }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	for _, c := range []struct{ name, url, key string }{{"direct", upURL, upstreamKey}, {"gateway", "http://" + l.Addr().String() + "/v1", devopsKey}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				body := []byte(`{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"user","content":"Pod web-` + strconv.FormatInt(benchSeq.Add(1), 10) + ` is crash-looping."}]}`)
				req, _ := http.NewRequest("POST", c.url+"/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.key)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
