package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// backgroundReplicas starts two gateway replicas on one real Redis, in
// front of up, with a devops team budget of $1 a month kept in Redis and
// run_idle 10m. It returns replica A (closed by the test), openai-go
// clients of A and B (B closed at cleanup), and the team's spend as B
// answers it.
func backgroundReplicas(t *testing.T, up http.Handler) (a *gateway.Server, ca, cb openai.Client, spend func() gateway.Spend) {
	t.Helper()
	rdb, prefix := testRedis(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n  store: {kind: redis, key_prefix: " + prefix + "}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, "http://upstream.invalid/v1", pols, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\nlimits: {run_idle: 10m}\n")
	replica := func() (*gateway.Server, openai.Client) {
		cfg, err := gateway.LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.New(cfg, gateway.WithBaseTransport(openaitest.NewTransport(up)), gateway.WithRedisClient(rdb),
			gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		return gw, openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
			option.WithHTTPClient(&http.Client{Transport: gw.Transport()}), option.WithMaxRetries(0))
	}
	a, ca = replica()
	b, cb := replica()
	t.Cleanup(func() { _ = b.Close() })
	spend = func() gateway.Spend {
		t.Helper()
		var s gateway.Spend
		if err := cb.Get(context.Background(), "spend", nil, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	return a, ca, cb, spend
}

// TestBackgroundResponseSeenDoneOnAnotherReplicaIsChargedItsUsage: two
// gateway replicas share one real Redis. A background response created
// through replica A is held there; the client polls replica B, which sees
// it completed. A, when its hold ends (here: it closes; else run_idle
// later), settles it at the usage B saw — 15 tokens — not at its
// reservation (16,384 output tokens and its input), as it did before.
// A response B saw done that A does not hold changes nothing; nor does a
// poll that shows the response still running.
func TestBackgroundResponseSeenDoneOnAnotherReplicaIsChargedItsUsage(t *testing.T) {
	up := &backgroundUpstream{state: map[string]string{}}
	a, ca, cb, spend := backgroundReplicas(t, up)
	ctx := context.Background()
	r, err := ca.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
	if err != nil || r.Status != "queued" {
		t.Fatalf("a background call through A: %+v %v", r, err)
	}
	if s := spend(); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
		t.Fatalf("spend after the call: %+v, want its reservation held (seen from B)", s)
	}
	up.set(r.ID, "in_progress", "null")
	if got, err := cb.Responses.Get(ctx, r.ID, responses.ResponseGetParams{}); err != nil || got.Status != "in_progress" {
		t.Fatalf("poll through B: %+v %v", got, err)
	}
	up.set(r.ID, "completed", `{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}`)
	if got, err := cb.Responses.Get(ctx, r.ID, responses.ResponseGetParams{}); err != nil || got.Status != "completed" || got.Usage.TotalTokens != 15 {
		t.Fatalf("poll through B: %+v %v", got, err)
	}
	if s := spend(); s.SpentTokens != 0 || s.ReservedUSD == "0.000000" {
		t.Errorf("spend after B saw it done: %+v, want it still held by A", s)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if s := spend(); s.SpentTokens != 15 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Errorf("spend after A's hold ended: %+v, want the 15 tokens B saw, nothing held", s)
	}
}

// streamingBackgroundUpstream is a backgroundUpstream that answers a
// retrieval with stream=true (openai-go's GetStreaming) with the
// response's events: in progress, then its final event when it is done.
type streamingBackgroundUpstream struct {
	*backgroundUpstream
	streamed atomic.Int32
}

func (u *streamingBackgroundUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/responses/")
	if r.Method != http.MethodGet || !ok || r.URL.Query().Get("stream") != "true" && !bytes.Contains(body, []byte(`"stream":true`)) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		u.backgroundUpstream.ServeHTTP(w, r)
		return
	}
	u.streamed.Add(1)
	u.mu.Lock()
	state := u.state[id]
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	obj := func(state string) string {
		return `{"id":"` + id + `","object":"response","created_at":1,"background":true,"model":"gpt-4o-mini","output":[],` + state + `}`
	}
	_, _ = io.WriteString(w, "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":"+obj(`"status":"in_progress","usage":null`)+"}\n\n")
	if strings.Contains(state, `"completed"`) {
		_, _ = io.WriteString(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":"+obj(state)+"}\n\n")
	}
}

// TestBackgroundResponseReadAsAStreamIsChargedItsUsage: a background
// response that the client reads as a stream of its events (openai-go's
// GetStreaming), through the replica that holds it or, with Redis, through
// another, is settled at the usage of its final event — it was charged its
// reservation after run_idle, as one never polled. A stream that ends
// before the response is done is reported cut to the client and leaves
// the hold as it was.
func TestBackgroundResponseReadAsAStreamIsChargedItsUsage(t *testing.T) {
	up := &streamingBackgroundUpstream{backgroundUpstream: &backgroundUpstream{state: map[string]string{}}}
	a, ca, cb, spend := backgroundReplicas(t, up)
	ctx := context.Background()
	background := func() string {
		t.Helper()
		r, err := ca.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
		if err != nil || r.Status != "queued" {
			t.Fatalf("a background call through A: %+v %v", r, err)
		}
		return r.ID
	}
	// read streams the response's events through c; it returns the
	// final event's usage and the stream's error.
	read := func(c openai.Client, id string) (int64, error) {
		s := c.Responses.GetStreaming(ctx, id, responses.ResponseGetParams{})
		defer s.Close()
		var total int64
		for s.Next() {
			if ev := s.Current(); ev.Type == "response.completed" {
				total = ev.Response.Usage.TotalTokens
			}
		}
		return total, s.Err()
	}
	const usage = `{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}`

	// Through the replica that holds it: settled when its final event is read.
	id := background()
	up.set(id, "completed", usage)
	if total, err := read(ca, id); err != nil || total != 15 {
		t.Fatalf("the stream through A: usage %d, %v", total, err)
	}
	if s := spend(); s.SpentTokens != 15 || s.ReservedUSD != "0.000000" {
		t.Errorf("after the stream through A: %+v, want the 15 tokens of its final event, nothing held", s)
	}

	// Running: the stream ends without its final event, reported cut; held.
	id = background()
	up.set(id, "in_progress", "null")
	if _, err := read(ca, id); err == nil || !strings.Contains(err.Error(), "stream_cut") {
		t.Errorf("a stream that ended before the response was done: %v, want the cut event", err)
	}
	if s := spend(); s.SpentTokens != 15 || s.ReservedUSD == "0.000000" {
		t.Errorf("after a stream of the running response: %+v, want it still held", s)
	}

	// Through the other replica: shared, settled when A's hold ends.
	up.set(id, "completed", usage)
	if total, err := read(cb, id); err != nil || total != 15 {
		t.Fatalf("the stream through B: usage %d, %v", total, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if s := spend(); s.SpentTokens != 30 || s.ReservedUSD != "0.000000" || s.InFlightCalls != 0 {
		t.Errorf("after A's hold ended: %+v, want 15 more tokens, nothing held", s)
	}
	if up.streamed.Load() != 3 {
		t.Errorf("the upstream streamed %d retrievals, want 3", up.streamed.Load())
	}
}

// slowDoneReads is a go-redis hook under which the reads of the answers
// replicas share of background responses seen done (":responses:done:"
// keys) never answer: each waits for its context to end, as on a Redis
// that stopped answering. It counts the keys they asked for.
type slowDoneReads struct{ keys atomic.Int32 }

func (*slowDoneReads) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *slowDoneReads) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		n := 0
		for _, c := range cmds {
			n += doneReads(c)
		}
		if n == 0 {
			return next(ctx, cmds)
		}
		h.keys.Add(int32(n))
		<-ctx.Done()
		for _, c := range cmds {
			c.SetErr(ctx.Err())
		}
		return ctx.Err()
	}
}

func (h *slowDoneReads) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		n := doneReads(cmd)
		if n == 0 {
			return next(ctx, cmd)
		}
		h.keys.Add(int32(n))
		<-ctx.Done()
		cmd.SetErr(ctx.Err())
		return ctx.Err()
	}
}

// doneReads returns the number of shared answers cmd reads.
func doneReads(cmd goredis.Cmder) int {
	if name := strings.ToLower(cmd.Name()); name != "get" && name != "mget" {
		return 0
	}
	n := 0
	for _, a := range cmd.Args()[1:] {
		if s, ok := a.(string); ok && strings.Contains(s, ":responses:done:") {
			n++
		}
	}
	return n
}

// TestBackgroundHoldsAtCloseWaitOneTimeoutForAStalledRedis: a replica that
// closes with background responses held asks Redis whether another
// replica saw them done; when Redis does not answer, Close waits one
// bounded read for all of them (then charges their reservations), not one
// 3-second timeout per response, one after the other (30 held responses
// held a shutdown 90 s, past a Kubernetes grace period).
func TestBackgroundHoldsAtCloseWaitOneTimeoutForAStalledRedis(t *testing.T) {
	rdb, prefix := testRedis(t)
	hook := &slowDoneReads{}
	rdb.AddHook(hook)
	up := &backgroundUpstream{state: map[string]string{}}
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, "http://upstream.invalid/v1", pols, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\nlimits: {run_idle: 10m}\n")
	cfg, err := gateway.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, gateway.WithBaseTransport(openaitest.NewTransport(up)), gateway.WithRedisClient(rdb),
		gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
		option.WithHTTPClient(&http.Client{Transport: gw.Transport()}), option.WithMaxRetries(0))
	const held = 3
	for range held {
		r, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
		if err != nil || r.Status != "queued" {
			t.Fatalf("a background call: %+v %v", r, err)
		}
	}
	start := time.Now()
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	// One bounded read (3 s) for all; under two of them leaves room for a
	// loaded machine, and none for one per response (9 s).
	if d := time.Since(start); d >= 6*time.Second {
		t.Errorf("Close took %s with %d background responses held and Redis stalled: want one read's timeout for all", d.Round(time.Millisecond), held)
	}
	if n := hook.keys.Load(); n != held {
		t.Errorf("Close asked Redis for %d shared answers, want %d (one per held response)", n, held)
	}
}

// stalledDoneReads is a go-redis hook under which a read of a shared
// answer of a background response (":responses:done:" keys) signals
// entered and waits for its context to end; inflight counts those
// waiting.
type stalledDoneReads struct {
	slowDoneReads
	entered  chan struct{}
	inflight atomic.Int32
}

func (h *stalledDoneReads) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if doneReads(cmd) == 0 {
			return next(ctx, cmd)
		}
		h.inflight.Add(1)
		defer h.inflight.Add(-1)
		select {
		case h.entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		cmd.SetErr(ctx.Err())
		return ctx.Err()
	}
}

// TestCloseWaitsForABackgroundHoldEndingAtItsRunIdle: a background hold
// whose run_idle ended just before the gateway closes is still being
// settled (it asks Redis whether another replica saw it done); Close
// returns once it is settled, not while its settle still runs beside a
// closed gateway (whose Redis client a caller then closes: the settle
// failed, and its reservation stayed held until its TTL).
func TestCloseWaitsForABackgroundHoldEndingAtItsRunIdle(t *testing.T) {
	rdb, prefix := testRedis(t)
	hook := &stalledDoneReads{entered: make(chan struct{}, 1)}
	rdb.AddHook(hook)
	up := &backgroundUpstream{state: map[string]string{}}
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n  store: {kind: redis, key_prefix: " + prefix + "}\n"}
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, "http://upstream.invalid/v1", pols, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\nlimits: {run_idle: 1s}\n")
	replica := func() (*gateway.Server, openai.Client) {
		cfg, err := gateway.LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.New(cfg, gateway.WithBaseTransport(openaitest.NewTransport(up)), gateway.WithRedisClient(rdb),
			gateway.WithPolicyWatch(false), gateway.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		return gw, openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"),
			option.WithHTTPClient(&http.Client{Transport: gw.Transport()}), option.WithMaxRetries(0))
	}
	a, ca := replica()
	b, cb := replica()
	defer b.Close()
	r, err := ca.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-4o-mini", Background: openai.Bool(true),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("check the disks")}})
	if err != nil || r.Status != "queued" {
		t.Fatalf("a background call: %+v %v", r, err)
	}
	<-hook.entered // run_idle ended: A asks Redis for an answer another replica saw
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := hook.inflight.Load(); n != 0 {
		t.Errorf("Close returned while %d hold(s) still waited on Redis to be settled", n)
	}
	var s gateway.Spend
	if err := cb.Get(context.Background(), "spend", nil, &s); err != nil {
		t.Fatal(err)
	}
	if s.ReservedUSD != "0.000000" || s.SpentUSD == "0.000000" {
		t.Errorf("spend right after A closed: %+v, want the hold charged its reservation, nothing held", s)
	}
}
