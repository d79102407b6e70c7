package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
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

// upstreamConns counts the connections the instant upstreams accepted.
var upstreamConns atomic.Int64

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
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			upstreamConns.Add(1)
		}
	}}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// loadTarget is one side of the load benchmark: the upstream directly or
// the gateway, each with its own client and connection pool.
type loadTarget struct {
	name, url, key string
	client         *http.Client
	dials          atomic.Int64 // connections the client opened
}

func newLoadTarget(name, url, key string) *loadTarget {
	// HTTP/1.1 keep-alive, a pool large enough that no request waits for
	// a connection or dials a new one once warm, no gzip.
	t := &loadTarget{name: name, url: url, key: key}
	var d net.Dialer
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			t.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}}
	t.client = &http.Client{Transport: tr}
	return t
}

// loadRound is what one round of the generator measured.
type loadRound struct {
	sched   []time.Duration // from each request's scheduled start to its end
	service []time.Duration // from each request's actual send to its end
	failed  int
}

// load sends rate requests a second for d to t, open loop: request i is
// due at start+i/rate and sent then (by its own goroutine) whether or not
// the earlier ones have answered, so a slow server meets the same arrival
// rate as a fast one and its queueing shows in the latencies (measured
// from the scheduled start, without coordinated omission).
func load(t *loadTarget, rate int, d time.Duration) loadRound {
	n := int(d.Seconds() * float64(rate))
	r := loadRound{sched: make([]time.Duration, n), service: make([]time.Duration, n)}
	var failed atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		body := []byte(`{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"system","content":"You are an SRE assistant."},{"role":"user","content":"Pod web-` + strconv.FormatInt(benchSeq.Add(1), 10) + ` is crash-looping. What should I do?"}]}`)
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			req, _ := http.NewRequest("POST", t.url+"/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+t.key)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := t.client.Do(req)
			if err != nil {
				failed.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			end := time.Now()
			r.sched[i], r.service[i] = end.Sub(due), end.Sub(t0)
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	r.failed = int(failed.Load())
	return r
}

// slowBins says, per round and per tenth of a round (by send order, so
// by scheduled time), the p99 latency and how many requests took longer
// than limit: whether the tail is a warm-up at the start of the run or of
// each round, or spread evenly.
func slowBins(rounds []loadRound, limit time.Duration) string {
	var sb strings.Builder
	for k, r := range rounds {
		var slow [10]int
		var p99s [10]string
		for b := range 10 {
			tenth := slices.Clone(r.sched[b*len(r.sched)/10 : (b+1)*len(r.sched)/10])
			for _, l := range tenth {
				if l > limit {
					slow[b]++
				}
			}
			slices.Sort(tenth)
			p99s[b] = fmt.Sprintf("%.1f", float64(pct(tenth, .99).Microseconds())/1000)
		}
		s := slices.Clone(r.sched)
		slices.Sort(s)
		fmt.Fprintf(&sb, "\n    round %d: p99 %v; per tenth: p99 ms %v, slow %v", k, pct(s, .99).Round(10*time.Microsecond), p99s, slow)
	}
	return sb.String()
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// procCPU returns the CPU time (user and system) process pid has used,
// from /proc (Linux), or -1.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The fields after the command (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// ctxSwitches returns the context switches (voluntary and not) of all the
// threads of process pid, from /proc (Linux), or -1. A wake-up from idle
// is one: they count how often a process had to be woken for its work.
func ctxSwitches(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/status")
		if err != nil {
			continue // the thread has exited
		}
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				m, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += m
			}
		}
	}
	return n
}

// ioSyscalls returns the read and write system calls process pid has
// made (syscr and syscw of /proc/<pid>/io, Linux: read, recv, write,
// send and their kin), or -1s.
func ioSyscalls(pid int) [2]int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return [2]int64{-1, -1}
	}
	var rw [2]int64
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			rw[0] = n
		case "syscw":
			rw[1] = n
		}
	}
	return rw
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadSettings returns the load benchmarks' rate (TOKENWISE_BENCH_RATE,
// 2,000 requests/s), round length (TOKENWISE_BENCH_SECONDS, 1 s) and
// rounds a side (TOKENWISE_BENCH_ROUNDS, 5).
func loadSettings() (rate int, d time.Duration, rounds int) {
	rate, secs, rounds := 2000, 1.0, 5
	if v, err := strconv.Atoi(os.Getenv("TOKENWISE_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("TOKENWISE_BENCH_SECONDS"), 64); err == nil && v > 0 {
		secs = v
	}
	if v, err := strconv.Atoi(os.Getenv("TOKENWISE_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	return rate, time.Duration(secs * float64(time.Second)), rounds
}

// BenchmarkGatewayAddedLatency is the gateway's load benchmark. The
// gateway runs in a process of its own (this test binary, as in the
// replica test), with the full policy on, in front of an instant upstream
// served by the benchmark's process, which also runs one open-loop load
// generator at 2,000 requests/s (TOKENWISE_BENCH_RATE). Its reference is
// a bare Go reverse proxy (net/http's server, httputil.ReverseProxy,
// net/http's Transport; runBareProxy) in a process of its own too: what
// any proxy hop written in Go costs on this machine, without a policy.
// Rounds of 1 s (TOKENWISE_BENCH_SECONDS) go to the upstream directly, to
// the bare proxy and to the gateway, 5 of each (TOKENWISE_BENCH_ROUNDS),
// the order rotated every round, so that all meet the same machine (other
// load, CPU frequency, GC). It reports the median and p99 latency of each
// side, measured from each request's scheduled start, what the gateway
// and the bare proxy add to the direct side (added-*, proxy-added-*) and
// what the gateway adds to the bare proxy (over-proxy-*), and the CPU the
// gateway and proxy processes spend per request (from /proc/<pid>/stat),
// which is what they cost on a shared machine whatever the latency shows.
//
//	go test -run '^$' -bench GatewayAddedLatency -benchtime 1x ./gateway
func BenchmarkGatewayAddedLatency(b *testing.B) {
	rate, d, rounds := loadSettings()
	b.Setenv(upstreamEnv, upstreamKey)
	upURL := instantUpstream(b)
	// TOKENWISE_BENCH_POLICY=minimal gives the team a policy of nothing
	// but its name (the defaults' layers only), to tell the chain's part
	// from the HTTP serving's.
	policy := benchPolicy
	if os.Getenv("TOKENWISE_BENCH_POLICY") == "minimal" {
		policy = "version: 1\nname: devops\n"
	}
	cfgPath := writeFiles(b, upURL, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": policy}, "")
	// TOKENWISE_BENCH_GATEWAY_PROCS sets the gateway process's GOMAXPROCS.
	if v := os.Getenv("TOKENWISE_BENCH_GATEWAY_PROCS"); v != "" {
		b.Setenv("GOMAXPROCS", v)
	}
	// TOKENWISE_BENCH_GATEWAY_ENV adds variables to the gateway process's
	// environment (space-separated NAME=value, e.g. "GOGC=400").
	gw := startReplica(b, cfgPath, strings.Fields(os.Getenv("TOKENWISE_BENCH_GATEWAY_ENV"))...)
	// The reference: a bare Go reverse proxy (net/http's server,
	// httputil.ReverseProxy and net/http's Transport) in a process of its
	// own, with the same environment; it only swaps the key.
	bare := startChild(b, append(strings.Fields(os.Getenv("TOKENWISE_BENCH_GATEWAY_ENV")), bareProxyEnv+"="+upURL)...)
	direct := newLoadTarget("direct", upURL, upstreamKey)
	proxy := newLoadTarget("proxy", bare.url+"/v1", devopsKey)
	via := newLoadTarget("gateway", gw.url+"/v1", devopsKey)
	targets := []*loadTarget{direct, proxy, via}
	pids := []int{0, bare.pid, gw.pid} // the process serving each target, 0: this one
	for _, t := range targets {
		defer t.client.CloseIdleConnections()
	}
	// Warm up every side alike before the measured rounds: one round of
	// the same length and rate each (connections, pools, the chain's first
	// calls, the gateway's heap). The first round against the freshly
	// started gateway is a figure of its own (what the first second of a
	// new replica's users meet): it is reported as cold-*, apart from the
	// measured rounds.
	// TOKENWISE_BENCH_PROFILE_COLD=1 starts the gateway's profile or trace
	// before the warm-up round instead of after it.
	profiling := os.Getenv("TOKENWISE_GATEWAY_TEST_CPUPROFILE") != "" || os.Getenv("TOKENWISE_GATEWAY_TEST_TRACE") != ""
	if profiling && os.Getenv("TOKENWISE_BENCH_PROFILE_COLD") != "" {
		_ = syscall.Kill(gw.pid, syscall.SIGUSR1)
		profiling = false
	}
	coldD := load(direct, rate, d)
	coldP := load(proxy, rate, d)
	coldG := load(via, rate, d)
	if coldD.failed+coldP.failed+coldG.failed > 0 {
		b.Fatalf("warm-up: %d, %d and %d requests failed\n%s\n%s", coldD.failed, coldP.failed, coldG.failed, gw.logs.String(), bare.logs.String())
	}
	b.Logf("warm-up (cold gateway) round, where its slow requests were sent: %s", slowBins([]loadRound{coldG}, time.Hour))
	slices.Sort(coldD.sched)
	slices.Sort(coldG.sched)
	if profiling {
		_ = syscall.Kill(gw.pid, syscall.SIGUSR1) // the gateway's profile starts now
	}
	const nt = 3 // direct, proxy, gateway
	b.ResetTimer()
	for range b.N {
		var all [nt]loadRound
		var selfCPUs [nt]time.Duration // this process: generator and upstream
		var selfSw [nt]int64           // its context switches
		var childCPU [nt]time.Duration // the proxy's and the gateway's, in their rounds
		var gwSw int64                 // the gateway's context switches, in its rounds
		var gwRW [2]int64              // the gateway's read and write system calls, in its rounds
		var gwObjs, gwBytes uint64     // the gateway's heap allocations, in its rounds
		allocsOK := true
		var dials, upConns [nt]int64 // connections opened: by the generator, accepted by the upstream
		var perRound [nt][]loadRound // each round's latencies, in send order, for the time bins
		for i := range rounds {
			// Each round every side once, the order rotated every round.
			for o := range nt {
				j := (o + i) % nt
				t := targets[j]
				runtime.GC()
				// The gateway's allocations are asked for outside the
				// span of the other counters (the asking costs it a
				// signal, a wake-up and a write).
				var o0, b0 uint64
				if t == via && allocsOK {
					o0, b0, allocsOK = replicaAllocs(gw)
				}
				s0, w0 := ctxSwitches(os.Getpid()), ctxSwitches(gw.pid)
				rw0 := ioSyscalls(gw.pid)
				c0, g0 := selfCPU(), procCPU(pids[j])
				d0, u0 := t.dials.Load(), upstreamConns.Load()
				r := load(t, rate, d)
				c1, g1 := selfCPU(), procCPU(pids[j])
				s1, w1 := ctxSwitches(os.Getpid()), ctxSwitches(gw.pid)
				rw1 := ioSyscalls(gw.pid)
				if t == via && allocsOK {
					var o1, b1 uint64
					if o1, b1, allocsOK = replicaAllocs(gw); allocsOK {
						gwObjs += o1 - o0
						gwBytes += b1 - b0
					}
				}
				selfSw[j] += s1 - s0
				if t == via {
					gwSw += w1 - w0
					gwRW[0] += rw1[0] - rw0[0]
					gwRW[1] += rw1[1] - rw0[1]
				}
				dials[j] += t.dials.Load() - d0
				upConns[j] += upstreamConns.Load() - u0
				selfCPUs[j] += c1 - c0
				if pids[j] != 0 {
					childCPU[j] += g1 - g0
				}
				if r.failed > 0 {
					b.Fatalf("%s: %d of %d requests failed\n%s\n%s", t.name, r.failed, len(r.sched), gw.logs.String(), bare.logs.String())
				}
				perRound[j] = append(perRound[j], loadRound{sched: slices.Clone(r.sched)})
				all[j].sched = append(all[j].sched, r.sched...)
				all[j].service = append(all[j].service, r.service...)
			}
		}
		for j := range all {
			slices.Sort(all[j].sched)
			slices.Sort(all[j].service)
		}
		n := len(all[0].sched)
		var p50, p99 [nt]time.Duration
		for j := range nt {
			p50[j], p99[j] = pct(all[j].sched, .5), pct(all[j].sched, .99)
		}
		const dir, prx, gwy = 0, 1, 2 // the targets' indices
		b.ReportMetric(float64(p50[dir].Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(p99[dir].Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(p50[gwy].Microseconds()), "gateway-p50-µs")
		b.ReportMetric(float64(p99[gwy].Microseconds()), "gateway-p99-µs")
		b.ReportMetric(float64((p50[gwy] - p50[dir]).Microseconds()), "added-p50-µs")
		b.ReportMetric(float64((p99[gwy] - p99[dir]).Microseconds()), "added-p99-µs")
		b.ReportMetric(float64((p50[prx] - p50[dir]).Microseconds()), "proxy-added-p50-µs")
		b.ReportMetric(float64((p99[prx] - p99[dir]).Microseconds()), "proxy-added-p99-µs")
		b.ReportMetric(float64((p50[gwy] - p50[prx]).Microseconds()), "over-proxy-p50-µs")
		b.ReportMetric(float64((p99[gwy] - p99[prx]).Microseconds()), "over-proxy-p99-µs")
		b.ReportMetric(float64(pct(coldG.sched, .99).Microseconds()), "cold-gateway-p99-µs")
		b.ReportMetric(float64(pct(coldD.sched, .99).Microseconds()), "cold-direct-p99-µs")
		if childCPU[gwy] >= 0 && childCPU[prx] >= 0 {
			b.ReportMetric(float64(childCPU[gwy].Microseconds())/float64(n), "gateway-cpu-µs/req")
			b.ReportMetric(float64(childCPU[prx].Microseconds())/float64(n), "proxy-cpu-µs/req")
		}
		b.Logf("%d req/s, %d rounds of %v each side: direct p50 %v p99 %v; bare proxy p50 %v p99 %v; gateway p50 %v p99 %v",
			rate, rounds, d, p50[dir], p99[dir], p50[prx], p99[prx], p50[gwy], p99[gwy])
		b.Logf("added to direct: bare proxy p50 %v p99 %v; gateway p50 %v p99 %v; gateway over the bare proxy p50 %v p99 %v",
			p50[prx]-p50[dir], p99[prx]-p99[dir], p50[gwy]-p50[dir], p99[gwy]-p99[dir], p50[gwy]-p50[prx], p99[gwy]-p99[prx])
		b.Logf("warm-up round (the gateway just started, 1 round each side, not in the figures above): direct p50 %v p99 %v; gateway p50 %v p99 %v",
			pct(coldD.sched, .5), pct(coldD.sched, .99), pct(coldG.sched, .5), pct(coldG.sched, .99))
		b.Logf("service time (from the actual send): direct p50 %v p99 %v; bare proxy p50 %v p99 %v; gateway p50 %v p99 %v",
			pct(all[dir].service, .5), pct(all[dir].service, .99), pct(all[prx].service, .5), pct(all[prx].service, .99),
			pct(all[gwy].service, .5), pct(all[gwy].service, .99))
		b.Logf("CPU per request: gateway process %v, bare proxy process %v; generator+upstream process %v (direct rounds), %v (proxy rounds), %v (gateway rounds)",
			childCPU[gwy]/time.Duration(n), childCPU[prx]/time.Duration(n), selfCPUs[dir]/time.Duration(n), selfCPUs[prx]/time.Duration(n), selfCPUs[gwy]/time.Duration(n))
		if allocsOK {
			b.ReportMetric(float64(gwObjs)/float64(n), "gateway-allocs/req")
			b.ReportMetric(float64(gwBytes)/float64(n), "gateway-B/req")
		}
		if gwRW[0] >= 0 {
			b.ReportMetric(float64(gwRW[0])/float64(n), "gateway-reads/req")
			b.ReportMetric(float64(gwRW[1])/float64(n), "gateway-writes/req")
		}
		b.Logf("context switches per request (wake-ups): gateway process %.2f; generator+upstream process %.2f (direct rounds), %.2f (proxy rounds), %.2f (gateway rounds)",
			float64(gwSw)/float64(n), float64(selfSw[dir])/float64(n), float64(selfSw[prx])/float64(n), float64(selfSw[gwy])/float64(n))
		b.Logf("connections opened during the rounds: direct rounds %d (the generator's); proxy rounds %d by the generator, %d accepted by the upstream; gateway rounds %d by the generator, %d accepted by the upstream",
			dials[dir], dials[prx], upConns[prx], dials[gwy], upConns[gwy])
		b.ReportMetric(float64(dials[gwy]), "gateway-client-dials")
		b.ReportMetric(float64(upConns[gwy]), "gateway-upstream-dials")
		for j, name := range []string{"direct", "bare proxy", "gateway"} {
			b.Logf("%s: where the requests slower than its p99 were sent: %s", name, slowBins(perRound[j], pct(all[j].sched, .99)))
		}
		if os.Getenv("TOKENWISE_BENCH_GATEWAY_LOGS") != "" {
			b.Logf("the gateway process's stderr:\n%s", gw.logs.String())
		}
	}
}

// BenchmarkGatewayRoundTrip is one request at a time, directly to the
// instant upstream and through the gateway (full policy): the gateway's
// cost per call on an idle machine, which the load benchmark's figures
// add queueing to; over HTTP and in the process (Server.Transport).
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
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer keepAlive.CloseIdleConnections()
	// gateway-new-conn: a connection per request, as in a stall, when
	// every waiting request dials: the gateway starts a connection
	// goroutine (and grows its stack) for each.
	newConn := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, c := range []struct {
		name, url, key string
		client         *http.Client
	}{
		{"direct", upURL, upstreamKey, keepAlive},
		{"gateway", "http://" + l.Addr().String() + "/v1", devopsKey, keepAlive},
		{"gateway-new-conn", "http://" + l.Addr().String() + "/v1", devopsKey, newConn},
		// gateway-in-process: Server.Transport, the gateway as a library
		// (no socket between the client and the gateway).
		{"gateway-in-process", "http://tokenwise.invalid/v1", devopsKey, &http.Client{Transport: srv.Transport()}},
	} {
		client := c.client
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := selfCPU()
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
			// This process's CPU: the client's, the gateway's and the
			// upstream's (all three run here).
			b.ReportMetric(float64(selfCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkInProcessAddedLatency is the load benchmark of the gateway as
// a library (Server.Transport): the same open-loop generator at 2,000
// requests/s (TOKENWISE_BENCH_RATE), rounds of 1 s (TOKENWISE_BENCH_SECONDS)
// to the instant upstream directly and through a gateway in this process
// with the full policy, 5 of each (TOKENWISE_BENCH_ROUNDS), alternating.
// The generator, the gateway and the upstream share this process: what a
// Go service that embeds the gateway adds to each of its calls, in
// latency from each request's scheduled start and in this process's CPU.
//
//	go test -run '^$' -bench InProcessAddedLatency -benchtime 1x ./gateway
func BenchmarkInProcessAddedLatency(b *testing.B) {
	rate, d, rounds := loadSettings()
	b.Setenv(upstreamEnv, upstreamKey)
	upURL := instantUpstream(b)
	cfg, err := gateway.LoadConfig(writeFiles(b, upURL, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": benchPolicy}, ""))
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	direct := newLoadTarget("direct", upURL, upstreamKey)
	defer direct.client.CloseIdleConnections()
	in := &loadTarget{name: "in-process", url: "http://tokenwise.invalid/v1", key: devopsKey, client: &http.Client{Transport: gw.Transport()}}
	targets := [2]*loadTarget{direct, in}
	for _, t := range targets { // warm up: connections, pools, the chain's first calls
		if r := load(t, rate, d); r.failed > 0 {
			b.Fatalf("warm-up %s: %d requests failed", t.name, r.failed)
		}
	}
	b.ResetTimer()
	for range b.N {
		var all [2][]time.Duration
		var cpu [2]time.Duration
		for i := range rounds {
			for o := range 2 {
				j := (o + i) % 2
				runtime.GC()
				c0 := selfCPU()
				r := load(targets[j], rate, d)
				cpu[j] += selfCPU() - c0
				if r.failed > 0 {
					b.Fatalf("%s: %d of %d requests failed", targets[j].name, r.failed, len(r.sched))
				}
				all[j] = append(all[j], r.sched...)
			}
		}
		slices.Sort(all[0])
		slices.Sort(all[1])
		n := time.Duration(len(all[0]))
		p50, p99 := [2]time.Duration{pct(all[0], .5), pct(all[1], .5)}, [2]time.Duration{pct(all[0], .99), pct(all[1], .99)}
		b.ReportMetric(float64(p50[0].Microseconds()), "direct-p50-µs")
		b.ReportMetric(float64(p99[0].Microseconds()), "direct-p99-µs")
		b.ReportMetric(float64(p50[1].Microseconds()), "in-process-p50-µs")
		b.ReportMetric(float64(p99[1].Microseconds()), "in-process-p99-µs")
		b.ReportMetric(float64((p50[1] - p50[0]).Microseconds()), "added-p50-µs")
		b.ReportMetric(float64((p99[1] - p99[0]).Microseconds()), "added-p99-µs")
		b.ReportMetric(float64((cpu[1]/n - cpu[0]/n).Microseconds()), "added-cpu-µs/req")
		b.Logf("%d req/s, %d rounds of %v each side: direct p50 %v p99 %v; in process p50 %v p99 %v; added p50 %v p99 %v; CPU per request (the process: generator, upstream and, in its rounds, the gateway) direct %v, in process %v",
			rate, rounds, d, p50[0], p99[0], p50[1], p99[1], p50[1]-p50[0], p99[1]-p99[0], cpu[0]/n, cpu[1]/n)
	}
}

// BenchmarkInProcessResponsesStream: a streamed Responses call of 500
// deltas (113 KB) through the gateway in this process (Server.Transport,
// the team's budget and the owner record on), from an in-memory upstream,
// read to its end. Its CPU profile shows what each pass over the stream
// costs (the first, which settles the call; the owner tap's):
//
//	go test -run '^$' -bench InProcessResponsesStream -cpuprofile cpu.out ./gateway
func BenchmarkInProcessResponsesStream(b *testing.B) {
	b.Setenv(upstreamEnv, upstreamKey)
	stream := gateway.BenchResponsesStream(500)
	up := openaitest.NewTransport(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(stream)
	}))
	cfg, err := gateway.LoadConfig(writeFiles(b, "http://upstream.invalid/v1", defaultPolicies, ""))
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.WithBaseTransport(up), gateway.WithPolicyWatch(false),
		gateway.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	client := &http.Client{Transport: gw.Transport()}
	body := `{"model":"gpt-4o-mini","stream":true,"input":"Tell me a story.","max_output_tokens":1000}`
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, "http://tokenwise.invalid/v1/responses", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+devopsKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(stream)) {
			b.Fatalf("status %d, read %d of %d bytes: %v", resp.StatusCode, n, len(stream), err)
		}
	}
}
