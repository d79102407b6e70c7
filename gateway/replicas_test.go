package gateway_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/policies"
)

// replicaEnv makes the test binary a gateway replica (see TestMain): it
// names the gateway file.
const replicaEnv = "TOKENWISE_GATEWAY_TEST_REPLICA"

// bareProxyEnv makes the test binary a bare reverse proxy (see TestMain)
// to the upstream it names: the load benchmark's reference.
const bareProxyEnv = "TOKENWISE_GATEWAY_TEST_BARE_PROXY"

func TestMain(m *testing.M) {
	if path := os.Getenv(replicaEnv); path != "" {
		os.Exit(runReplica(path))
	}
	if up := os.Getenv(bareProxyEnv); up != "" {
		os.Exit(runBareProxy(up))
	}
	goleak.VerifyTestMain(m)
}

// runReplica serves the gateway file at path on a loopback port (see
// serveChild).
func runReplica(path string) int {
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return serveChild(l, srv)
}

// server is what a child process of the tests serves: a gateway or a
// bare proxy.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// runBareProxy serves a bare reverse proxy to upstream on a loopback
// port, like runReplica a gateway: net/http's server and
// httputil.ReverseProxy over net/http's Transport (keep-alive, as many
// idle connections as the gateway keeps, no compression), which only
// replaces the caller's key with the upstream's (TOKENWISE_GATEWAY_TEST_UPSTREAM_KEY).
// It is what any Go proxy in front of the upstream costs, without a
// policy: the load benchmark's reference for the gateway.
func runBareProxy(upstream string) int {
	target, err := url.Parse(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	auth := "Bearer " + os.Getenv(upstreamEnv)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", auth)
		},
		Transport: &http.Transport{Proxy: nil, MaxIdleConns: 4096, MaxIdleConnsPerHost: 2048,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return serveChild(l, &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute})
}

// serveChild serves srv on l, prints "listening <addr>", and shuts down
// gracefully when stdin closes.
func serveChild(l net.Listener, srv server) int {
	// TOKENWISE_GATEWAY_TEST_CPUPROFILE names a file for the replica's
	// CPU profile (the load benchmark's gateway side). It starts at
	// SIGUSR1, which the load benchmark sends once warm, so that the
	// profile shows the steady state rather than the start.
	if p := os.Getenv("TOKENWISE_GATEWAY_TEST_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			go func() {
				if _, ok := <-usr1; ok {
					_ = pprof.StartCPUProfile(f)
				}
			}()
			defer func() { signal.Stop(usr1); close(usr1); pprof.StopCPUProfile(); f.Close() }()
		}
	}
	// TOKENWISE_GATEWAY_TEST_TRACE names a file for the replica's
	// execution trace (runtime/trace), started at SIGUSR1 like the profile.
	if p := os.Getenv("TOKENWISE_GATEWAY_TEST_TRACE"); p != "" {
		if f, err := os.Create(p); err == nil {
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			go func() {
				if _, ok := <-usr1; ok {
					_ = trace.Start(f)
				}
			}()
			defer func() { signal.Stop(usr1); close(usr1); trace.Stop(); f.Close() }()
		}
	}
	// SIGUSR2 makes the replica log its heap allocations so far (objects
	// and bytes, tiny ones included), for the load benchmark's
	// allocations per request.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	go func() {
		for range usr2 {
			objs, bytes := heapAllocs()
			fmt.Fprintf(os.Stderr, "%s %d %d\n", allocsLine, objs, bytes)
		}
	}()
	fmt.Printf("listening %s\n", l.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// allocsLine starts the line a replica logs on SIGUSR2.
const allocsLine = "tokenwise-test-heap-allocs"

// heapAllocs returns the heap allocations of the process so far: objects
// (tiny ones included) and bytes.
func heapAllocs() (objs, bytes uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/tiny/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	for _, m := range s {
		if m.Value.Kind() != metrics.KindUint64 {
			return 0, 0
		}
	}
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

// replicaAllocs asks replica r for its heap allocations so far (SIGUSR2)
// and waits for its answer in its log; ok is false when none came.
func replicaAllocs(r *replica) (objs, bytes uint64, ok bool) {
	before := strings.Count(r.logs.String(), allocsLine)
	if err := syscall.Kill(r.pid, syscall.SIGUSR2); err != nil {
		return 0, 0, false
	}
	for range 200 {
		logs := r.logs.String()
		if strings.Count(logs, allocsLine) > before {
			i := strings.LastIndex(logs, allocsLine)
			line, _, _ := strings.Cut(logs[i:], "\n")
			_, err := fmt.Sscanf(line, allocsLine+" %d %d", &objs, &bytes)
			return objs, bytes, err == nil
		}
		time.Sleep(10 * time.Millisecond) // a benchmark's wait for the other process, between rounds
	}
	return 0, 0, false
}

func redisAddr() string {
	if a := os.Getenv("TOKENWISE_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// testRedis returns a client of the test Redis and a key prefix unique to
// the test, whose keys are deleted at cleanup. Without Redis the test is
// skipped, or fails when CI is set.
func testRedis(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is unreachable (CI is set): %v", redisAddr(), err)
		}
		t.Skipf("Redis at %s is unreachable (set TOKENWISE_REDIS_ADDR to run this test): %v", redisAddr(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "twtest-gateway-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		c.Close()
	})
	return c, prefix
}

// replica is a gateway process (or a bare proxy's, startChild).
type replica struct {
	url  string
	pid  int
	logs *syncBuffer
}

// startReplica starts a gateway process serving the gateway file at
// cfgPath, with extraEnv added to its environment.
func startReplica(t testing.TB, cfgPath string, extraEnv ...string) *replica {
	t.Helper()
	return startChild(t, append(extraEnv[:len(extraEnv):len(extraEnv)], replicaEnv+"="+cfgPath)...)
}

// startChild starts this test binary as a child process with env added to
// this process's environment (which names what it serves, see TestMain)
// and returns it once it listens; it is shut down at cleanup.
func startChild(t testing.TB, env ...string) *replica {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{logs: &syncBuffer{}}
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.pid = cmd.Process.Pid
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("child process exited: %v\n%s", err, r.logs.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("child process did not shut down\n%s", r.logs.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child process did not start: %v\n%s", err, r.logs.String())
	}
	r.url = "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	return r
}

func post(t *testing.T, url, key, body string) (int, string) {
	return postTo(t, url+"/v1/chat/completions", key, body)
}

func postTo(t *testing.T, url, key, body string) (int, string) {
	req, err := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Two gateway processes on one Redis: concurrent calls on both never
// spend more than the team's budget together (their spend is one ledger,
// every cent accounted for), and a circuit breaker opened by failures
// seen on one replica refuses calls on the other — chat and Responses
// calls — without reaching the upstream.
func TestTwoGatewayReplicasShareBudgetAndBreaker(t *testing.T) {
	_, prefix := testRedis(t)
	t.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.NewServer(t)
	up.On(openaitest.Model("gpt-4o")).Reply(openaitest.ServerError())
	up.Default(openaitest.Text(strings.Repeat("word ", 40))) // ~50 output tokens, under max_tokens
	const limit = "0.002"
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": fmt.Sprintf(`version: 1
name: devops
budget:
  team: {period: monthly, max_usd: %s}
  min_output_tokens: 100
  store: {kind: redis, key_prefix: %s}
`, limit, prefix),
		"payments.yaml": `version: 1
name: payments
fallback:
  breaker: {consecutive_failures: 2, open_for: 10m}
`,
	}
	cfgPath := writeFiles(t, up.URL, pols, fmt.Sprintf("redis: {addr: %q, prefix: %s}\n", redisAddr(), prefix))
	a, b := startReplica(t, cfgPath), startReplica(t, cfgPath)

	// Budget: 2 replicas x 8 workers until the budget is spent.
	body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("question ", 100) + `"}]}`
	var mu sync.Mutex
	var ok, refused int
	var wg sync.WaitGroup
	for _, r := range []*replica{a, b} {
		for range 8 {
			wg.Go(func() {
				for range 12 {
					status, resp := post(t, r.url, devopsKey, body)
					mu.Lock()
					switch {
					case status == 200:
						ok++
					case status == 429 && strings.Contains(resp, "budget_exceeded"):
						refused++
					default:
						t.Errorf("status %d: %s", status, resp)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if ok == 0 || refused == 0 {
		t.Fatalf("%d answered, %d refused: want both (the budget spent)", ok, refused)
	}
	spends := make([]gateway.Spend, 2)
	for i, r := range []*replica{a, b} {
		req, _ := http.NewRequest("GET", r.url+"/v1/spend", nil)
		req.Header.Set("Authorization", "Bearer "+devopsKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&spends[i])
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The ledgers agree; the projections (pointers, and taken at each
	// answer's own time: runs_out_at may fall a second apart) are not
	// compared.
	ledger := func(s gateway.Spend) gateway.Spend {
		s.ProjectedUSD, s.ProjectedTokens, s.RunsOutAt = "", nil, nil
		return s
	}
	if ledger(spends[0]) != ledger(spends[1]) {
		t.Fatalf("the replicas disagree on the spend: %+v vs %+v", spends[0], spends[1])
	}
	spent, err := policies.ParseUSD(spends[0].SpentUSD)
	if err != nil {
		t.Fatal(err)
	}
	max, _ := policies.ParseUSD(limit)
	if spent > max {
		t.Fatalf("OVERSHOOT: spent $%s of $%s", spends[0].SpentUSD, limit)
	}
	// Every answered call is in the ledger at its exact price.
	p, _ := policies.Default().Model("gpt-4o-mini")
	reqs := up.Requests()
	var exact policies.PicoUSD
	for _, rec := range reqs {
		if rec.Chat == nil || rec.Chat.Model != "gpt-4o-mini" {
			continue
		}
		u := openaitest.UsageFor(rec.Chat, openaitest.Text(strings.Repeat("word ", 40)))
		exact += p.Cost(policies.TokenCounts{Input: int64(u.PromptTokens), Output: int64(u.CompletionTokens)})
	}
	want := exact.Ceil() // the exact sum, rounded up once
	if len(reqs) != ok || spent != want {
		t.Fatalf("%d answered, %d upstream calls; ledger $%s, upstream usage priced $%s", ok, len(reqs), spends[0].SpentUSD, want)
	}
	t.Logf("%d answered, %d refused, spent $%s of $%s", ok, refused, spends[0].SpentUSD, limit)

	// Breaker: two failures through replica a open gpt-4o's breaker; b
	// refuses the next gpt-4o call without calling the upstream.
	failing := `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	for range 2 {
		if status, resp := post(t, a.url, paymentsKey, failing); status != 500 {
			t.Fatalf("failing call through a: %d %s", status, resp)
		}
	}
	before := up.Count()
	status, resp := post(t, b.url, paymentsKey, failing)
	if status != 503 || !strings.Contains(resp, "circuit_open") {
		t.Fatalf("gpt-4o through b after a opened its breaker: %d %s; want 503 circuit_open", status, resp)
	}
	if up.Count() != before {
		t.Fatalf("b called the upstream through an open breaker")
	}
	// The breaker is the model's, whatever the API: a Responses call to
	// gpt-4o through b is refused too.
	status, resp = postTo(t, b.url+"/v1/responses", paymentsKey, `{"model":"gpt-4o","input":"hi"}`)
	if status != 503 || !strings.Contains(resp, "circuit_open") {
		t.Fatalf("a Responses call to gpt-4o through b after a opened its breaker: %d %s; want 503 circuit_open", status, resp)
	}
	if up.Count() != before {
		t.Fatalf("b sent a Responses call through an open breaker")
	}
	if status, resp := post(t, a.url, paymentsKey, failing); status != 503 {
		t.Fatalf("gpt-4o through a: %d %s; want 503", status, resp)
	}
}
