package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// runReplicas starts two gateways (in this process, each with its own
// Redis client) on one gateway file whose redis section names the test
// Redis, in front of one scripted upstream. pol is the policy of both
// teams (devops and payments), with budget.store's key_prefix set to the
// test's prefix; limits.run_idle is runIdle.
func runReplicas(t *testing.T, pol string, runIdle time.Duration) (a, b *env, up *openaitest.Server, c *goredis.Client, prefix string) {
	t.Helper()
	c, prefix = testRedis(t)
	t.Setenv(upstreamEnv, upstreamKey)
	up = openaitest.NewServer(t)
	pols := map[string]string{"default.yaml": "version: 1\nname: default\n"}
	for _, team := range []string{"devops", "payments"} {
		pols[team+".yaml"] = fmt.Sprintf("version: 1\nname: %s\n%s\n  store: {kind: redis, key_prefix: %s}\n", team, pol, prefix)
	}
	cfgPath := writeFiles(t, up.URL, pols, fmt.Sprintf("redis: {addr: %q, prefix: %s}\nlimits: {run_idle: %s}\n", redisAddr(), prefix, runIdle))
	return serveFile(t, cfgPath), serveFile(t, cfgPath), up, c, prefix
}

// call posts a chat completion with a run id and returns the status and
// the error code of a refusal.
func (e *env) call(t *testing.T, key, runID, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", e.url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(gateway.RunIDHeader, runID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		return 200, ""
	}
	return resp.StatusCode, errorCode(t, resp)
}

// errorCode returns the code of an OpenAI-shaped error body ("" for
// another body).
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var eb errorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error.Message == "" || eb.Error.Code == nil {
		t.Errorf("status %d: not an OpenAI-shaped error with a code (%v)", resp.StatusCode, err)
		return ""
	}
	return *eb.Error.Code
}

// One run id's calls spread over two replicas on one Redis: the run's call
// limit admits exactly max_calls in total, whatever the concurrency, and
// refuses the others with the OpenAI-shaped run_call_limit error (the
// upstream sees exactly max_calls calls); calls alternating between the
// replicas are numbered as one run; another run id, and the same run id in
// another team, count on their own; the run's key expires after run_idle.
func TestTwoGatewayReplicasShareRunCallLimit(t *testing.T) {
	const maxCalls, runIdle = 5, 30 * time.Minute
	a, b, up, c, prefix := runReplicas(t, "limits: {max_calls: 5}\nbudget:\n  team: {period: monthly, max_usd: 10}", runIdle)
	up.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	replicas := []*env{a, b}

	// Concurrent: 2 replicas x 6 workers x 3 calls of run "burst".
	var mu sync.Mutex
	var ok, refused int
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			for range 3 {
				status, code := replicas[i%2].call(t, devopsKey, "burst", body)
				mu.Lock()
				switch {
				case status == 200:
					ok++
				case status == 429 && code == "run_call_limit":
					refused++
				default:
					t.Errorf("status %d code %q", status, code)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != maxCalls || refused != 36-maxCalls || up.Count() != maxCalls {
		t.Fatalf("run of %d calls over 2 replicas: %d answered, %d refused, %d upstream calls; want exactly %d answered",
			maxCalls, ok, refused, up.Count(), maxCalls)
	}

	// Alternating: calls 1..5 of run "seq" answered, whichever replica
	// takes them; the 6th and 7th refused on both.
	for i := range maxCalls + 2 {
		status, code := replicas[i%2].call(t, devopsKey, "seq", body)
		if want := 200; i >= maxCalls {
			if status != 429 || code != "run_call_limit" {
				t.Fatalf("call %d of run seq: %d %q, want 429 run_call_limit", i+1, status, code)
			}
		} else if status != want {
			t.Fatalf("call %d of run seq: %d %q, want 200", i+1, status, code)
		}
	}

	// The same run id in another team is another run.
	for i := range maxCalls {
		if status, code := replicas[i%2].call(t, paymentsKey, "burst", body); status != 200 {
			t.Fatalf("call %d of payments' run burst: %d %q, want 200", i+1, status, code)
		}
	}
	if status, code := b.call(t, paymentsKey, "burst", body); status != 429 || code != "run_call_limit" {
		t.Fatalf("call %d of payments' run burst: %d %q, want 429 run_call_limit", maxCalls+1, status, code)
	}

	// The run's state is one Redis key of team and run id, expiring
	// run_idle after its last call.
	rs := twredis.NewRunStore(c, prefix, runIdle)
	for _, key := range []string{"devops/burst", "devops/seq", "payments/burst"} {
		n, err := c.HGet(context.Background(), rs.Key(key), "n").Int()
		if err != nil || n < maxCalls {
			t.Fatalf("run %s: count %d (%v)", key, n, err)
		}
		if ttl := c.PTTL(context.Background(), rs.Key(key)).Val(); ttl <= runIdle-time.Minute || ttl > runIdle {
			t.Fatalf("run %s expires in %v, want run_idle %v", key, ttl, runIdle)
		}
	}
}

// A run's deadline runs from its first call in any replica: a run whose
// shared start (the first replica's) is older than limits.run_timeout is
// refused by a replica that never saw it, while a new run is answered.
func TestTwoGatewayReplicasShareRunDeadline(t *testing.T) {
	a, b, up, c, prefix := runReplicas(t, "limits: {run_timeout: 1h}\nbudget:\n  team: {period: monthly, max_usd: 10}", time.Hour)
	up.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	if status, code := a.call(t, devopsKey, "fresh", body); status != 200 {
		t.Fatalf("first call of a new run through a: %d %q", status, code)
	}
	if status, code := b.call(t, devopsKey, "fresh", body); status != 200 {
		t.Fatalf("second call of the run through b: %d %q", status, code)
	}
	// Run "old" started two hours ago on a replica that is gone.
	rs := twredis.NewRunStore(c, prefix, time.Hour)
	if _, _, err := rs.Next(context.Background(), "devops/old", time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := up.Count()
	for _, r := range []*env{a, b} {
		if status, code := r.call(t, devopsKey, "old", body); status != 504 || code != "timeout" {
			t.Fatalf("a call of a run past its deadline: %d %q, want 504 timeout", status, code)
		}
	}
	if up.Count() != before {
		t.Fatal("a call of a run past its deadline reached the upstream")
	}
}

// One run id's calls spread concurrently over two replicas never spend
// more than the run's budget together: what the upstream billed stays
// within budget.run.max_tokens, and the run's ledger (in Redis, under team
// and run id, expiring after run_idle) holds exactly that. Another run id
// has a budget of its own.
func TestTwoGatewayReplicasShareRunBudget(t *testing.T) {
	const limit, runIdle = 2500, 20 * time.Minute
	a, b, up, c, prefix := runReplicas(t, fmt.Sprintf("budget:\n  run: {max_tokens: %d}\n  min_output_tokens: 100", limit), runIdle)
	// The upstream bills as OpenAI does, within the call's reservation:
	// at most the prompt's tokens (the gateway counts 108 for this one:
	// 100 billed) and at most max_tokens (all of them billed: the worst
	// case). (The scripted server's own count, bytes/4, is over the
	// tokenizer's for this text.)
	reply := openaitest.Text(strings.Repeat("word ", 40))
	reply.Usage = &openaitest.Usage{PromptTokens: 100, CompletionTokens: 100}
	up.Default(reply)
	body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("question ", 100) + `"}]}`
	replicas := []*env{a, b}
	var mu sync.Mutex
	var ok, refused int
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 3 {
				status, code := replicas[i%2].call(t, devopsKey, "spender", body)
				mu.Lock()
				switch {
				case status == 200:
					ok++
				case status == 429 && code == "budget_exceeded":
					refused++
				default:
					t.Errorf("status %d code %q", status, code)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok == 0 || refused == 0 {
		t.Fatalf("%d answered, %d refused: want both (the run's budget spent)", ok, refused)
	}
	var billed int64
	reqs := up.Requests()
	for _, rec := range reqs {
		u := openaitest.UsageFor(rec.Chat, reply)
		billed += int64(u.PromptTokens + u.CompletionTokens)
	}
	if len(reqs) != ok {
		t.Fatalf("%d answered, %d upstream calls", ok, len(reqs))
	}
	ledger := prefix + ":budget::run:devops/spender"
	bal, err := twredis.NewBudgetStore(c).Balance(context.Background(), ledger, budget.Window{}, time.Now())
	if billed > limit {
		t.Fatalf("OVERSHOOT: the upstream billed %d tokens of the run's %d over two replicas", billed, limit)
	}
	if err != nil || bal.Used.Tokens != billed || !bal.Reserved.IsZero() {
		t.Fatalf("the run's ledger: %+v (%v); the upstream billed %d", bal, err, billed)
	}
	keys, err := c.Keys(context.Background(), "{"+ledger+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("the run's ledger keys: %v %v", keys, err)
	}
	for _, k := range keys {
		if ttl := c.PTTL(context.Background(), k).Val(); ttl <= 0 || ttl > runIdle {
			t.Fatalf("ledger key %s expires in %v, want within run_idle %v", k, ttl, runIdle)
		}
	}
	// Another run, and the same run id in another team, spend their own
	// budgets.
	for _, call := range []struct{ key, run string }{{devopsKey, "other"}, {paymentsKey, "spender"}} {
		if status, code := b.call(t, call.key, call.run, body); status != 200 {
			t.Fatalf("run %s: %d %q, want 200", call.run, status, code)
		}
	}
	t.Logf("%d answered, %d refused, %d of %d tokens billed", ok, refused, billed, limit)
}

// A run whose count Redis cannot give is refused with an OpenAI-shaped
// 503 before it reaches the upstream (its call limit could not hold); a
// request without a run id is a run of its own, which needs no Redis.
func TestGatewayRunStoreUnavailable(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nlimits: {max_calls: 5}\n",
	}
	e := start(t, pols, "redis: {addr: \"127.0.0.1:1\"}\n") // nothing listens on port 1
	e.upstream.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	if status, code := e.call(t, devopsKey, "r1", body); status != 503 || code != "run_store_unavailable" {
		t.Fatalf("a run with Redis down: %d %q, want 503 run_store_unavailable", status, code)
	}
	if e.upstream.Count() != 0 {
		t.Fatal("a call whose run could not be counted reached the upstream")
	}
	if resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body); resp.StatusCode != 200 {
		t.Fatalf("a request without a run id: %d, want 200", resp.StatusCode)
	}
}

// runReport asks e for the report of the run id of key's team: the status,
// the report of a 200 and the error code of another.
func (e *env) runReport(t *testing.T, key, id string) (int, gateway.RunReport, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", e.url+"/v1/runs/"+url.PathEscape(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep gateway.RunReport
	if resp.StatusCode != 200 {
		return resp.StatusCode, rep, errorCode(t, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return 200, rep, ""
}

// billedReply is an answer whose usage the upstream bills, and what one
// call of it costs on gpt-4o-mini at the catalog's prices.
func billedReply() (openaitest.Reply, int64) {
	reply := openaitest.Text("Restart the pod.")
	reply.Usage = &openaitest.Usage{PromptTokens: 1000, CompletionTokens: 200, CachedTokens: 400, ReasoningTokens: 50}
	per := policies.DefaultCatalog()["gpt-4o-mini"].Cost(policies.TokenCounts{Input: 1000, Output: 200, CachedInput: 400, Reasoning: 50})
	return reply, int64(per)
}

// checkReport checks a run report of calls calls of billedReply.
func checkReport(t *testing.T, who string, rep gateway.RunReport, calls int, per int64, shared bool) {
	t.Helper()
	n := int64(calls)
	if rep.Object != "tokenwise.run" || rep.Shared != shared || rep.Calls != calls || rep.FailedCalls != 0 || rep.LostCalls != 0 ||
		rep.InputTokens != 1000*n || rep.CachedInputTokens != 400*n || rep.OutputTokens != 200*n || rep.ReasoningTokens != 50*n ||
		rep.CostPico != per*n || rep.CostUSD != strings.TrimPrefix(middleware.FormatPico(per*n), "$") {
		t.Fatalf("%s: report %+v, want %d calls of 1000/400 cached in, 200/50 reasoning out, %d pico each, shared %v", who, rep, calls, per, shared)
	}
	if m := rep.ByModel["gpt-4o-mini"]; len(rep.ByModel) != 1 || m.Calls != calls || m.CostPico != per*n || m.InputTokens != 1000*n {
		t.Fatalf("%s: by model %+v", who, rep.ByModel)
	}
	if rep.StartedAt.IsZero() || rep.WallMs <= 0 || time.Since(rep.StartedAt) > time.Minute {
		t.Fatalf("%s: started %v, wall %v ms", who, rep.StartedAt, rep.WallMs)
	}
}

// GET /v1/runs/{id} reports a run of X-Run-Id over every replica on one
// Redis: its calls, tokens and exact cost, the same from either replica,
// also from one that never served the run; a team reads its own runs only;
// an unknown run is an OpenAI-shaped 404.
func TestTwoGatewayReplicasReportOneRun(t *testing.T) {
	a, b, up, _, _ := runReplicas(t, "budget:\n  run: {max_usd: 100, max_calls: 10, max_wall_time: 1h}", time.Hour)
	reply, per := billedReply()
	up.Default(reply)
	body := func(i int) string {
		return fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Pod web-%d is crash-looping."}]}`, i)
	}
	for i, e := range []*env{a, b, a, b, a} {
		if status, code := e.call(t, devopsKey, "report-1", body(i)); status != 200 {
			t.Fatalf("call %d: %d %q", i, status, code)
		}
	}
	for _, rb := range []struct {
		key, run string
		e        *env
	}{{paymentsKey, "report-1", a}, {devopsKey, "only-b", b}, {devopsKey, "only-b", b}} {
		if status, code := rb.e.call(t, rb.key, rb.run, body(100+len(rb.run))); status != 200 {
			t.Fatalf("run %s: %d %q", rb.run, status, code)
		}
	}
	for name, e := range map[string]*env{"a": a, "b": b} {
		status, rep, code := e.runReport(t, devopsKey, "report-1")
		if status != 200 {
			t.Fatalf("replica %s: %d %q", name, status, code)
		}
		checkReport(t, "replica "+name, rep, 5, per, true)
		// The limits: calls numbered over both replicas, the run's ledger
		// in the shared budget store (each call's exact cost rounded up
		// once to the micro-dollar).
		l := rep.Limits
		spent := 5 * ((per + 999_999) / 1_000_000)
		if l.CallsStarted != 5 || l.MaxCalls != 10 || l.CallsLeft == nil || *l.CallsLeft != 5 || !l.Deadline.Equal(rep.StartedAt.Add(time.Hour)) ||
			l.BudgetUSD != "100.000000" || l.SpentUSD != fmt.Sprintf("0.%06d", spent) || l.ReservedUSD != "0.000000" ||
			l.RemainingUSD != fmt.Sprintf("99.%06d", 1_000_000-spent) {
			t.Fatalf("replica %s: limits %+v, want 5 of 10 calls, %d µ$ spent of $100, the deadline an hour after the start", name, l, spent)
		}
	}
	// A run replica a never served: its report is Redis's.
	if status, rep, code := a.runReport(t, devopsKey, "only-b"); status != 200 {
		t.Fatalf("a run of the other replica: %d %q", status, code)
	} else {
		checkReport(t, "a run of the other replica", rep, 2, per, true)
		if l := rep.Limits; l.CallsStarted != 2 || l.CallsLeft == nil || *l.CallsLeft != 8 || l.SpentUSD != fmt.Sprintf("0.%06d", 2*((per+999_999)/1_000_000)) {
			t.Fatalf("a run of the other replica: limits %+v, want 2 of 10 calls and their spend", l)
		}
	}
	// The same id in another team is another run.
	if status, rep, code := b.runReport(t, paymentsKey, "report-1"); status != 200 {
		t.Fatalf("payments: %d %q", status, code)
	} else {
		checkReport(t, "payments' run of the same id", rep, 1, per, true)
	}
	if status, _, code := a.runReport(t, devopsKey, "never-called"); status != 404 || code != "run_not_found" {
		t.Fatalf("an unknown run: %d %q, want 404 run_not_found", status, code)
	}
}

// Without Redis a replica reports the runs it served (shared false); a run
// id with slashes and spaces is reached escaped; a request without
// X-Run-Id is no run to report; a malformed id is a 400 and a request
// without a valid key a 401.
func TestGatewayReportsRunsItServed(t *testing.T) {
	e := start(t, nil, "")
	reply, per := billedReply()
	e.upstream.Default(reply)
	const id = "agent/7 step"
	for i := range 3 {
		if status, code := e.call(t, devopsKey, id, fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"q%d"}]}`, i)); status != 200 {
			t.Fatalf("call %d: %d %q", i, status, code)
		}
	}
	// A streamed call is in the report once its stream has ended: as soon
	// as the client has read [DONE].
	req, _ := http.NewRequestWithContext(context.Background(), "POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"streamed"}]}`))
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	req.Header.Set(gateway.RunIDHeader, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sse, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(strings.TrimSpace(string(sse)), "data: [DONE]") {
		t.Fatalf("the stream: %d %s", resp.StatusCode, sse)
	}
	status, rep, code := e.runReport(t, devopsKey, id)
	if status != 200 {
		t.Fatalf("%d %q", status, code)
	}
	checkReport(t, "local run", rep, 4, per, false)
	if l := rep.Limits; l.CallsStarted != 4 || l.MaxCalls != 0 || l.CallsLeft != nil || l.BudgetUSD != "" || !l.Deadline.IsZero() {
		t.Fatalf("limits %+v, want 4 calls started and no limit (the policy sets none)", l)
	}
	if rep.ID != id || rep.Team != "devops" {
		t.Fatalf("id %q team %q", rep.ID, rep.Team)
	}
	if status, _, code := e.runReport(t, paymentsKey, id); status != 404 || code != "run_not_found" {
		t.Fatalf("another team's run: %d %q, want 404", status, code)
	}
	if status, _, code := e.runReport(t, devopsKey, strings.Repeat("x", 129)); status != 400 || code != "invalid_run_id" {
		t.Fatalf("a run id too long: %d %q, want 400 invalid_run_id", status, code)
	}
	if status, _, code := e.runReport(t, "tw-not-a-key", id); status != 401 || code != "invalid_api_key" {
		t.Fatalf("an unknown key: %d %q, want 401", status, code)
	}
}

// TestGatewayRunReportCountsEstimatedCalls: a call whose answer carries no
// usage is billed an estimate, and the run report says how many calls
// were and what their estimates cost; a call billed the provider's usage
// is not counted.
func TestGatewayRunReportCountsEstimatedCalls(t *testing.T) {
	e := start(t, nil, "")
	reply, per := billedReply()
	noUsage := openaitest.Reply{Body: []byte(`{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Restart the pod."},"finish_reason":"stop"}]}`)}
	e.upstream.On().Reply(reply, noUsage)
	const id = "estimates"
	for i := range 2 {
		if status, code := e.call(t, devopsKey, id, fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"q%d"}]}`, i)); status != 200 {
			t.Fatalf("call %d: %d %q", i, status, code)
		}
	}
	status, rep, code := e.runReport(t, devopsKey, id)
	if status != 200 {
		t.Fatalf("%d %q", status, code)
	}
	est := rep.CostPico - per
	if rep.Calls != 2 || rep.EstimatedCalls != 1 || est <= 0 || rep.EstimatedPico != est ||
		rep.EstimatedUSD != strings.TrimPrefix(middleware.FormatPico(est), "$") {
		t.Fatalf("report %+v: want 2 calls, 1 estimated at %d pico (the cost beyond the billed call's %d)", rep, est, per)
	}
}
