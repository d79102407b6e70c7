package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
)

// silentRedis listens on a local port, accepts connections and never
// answers: a Redis that hangs (a stopped process, a black-holed network).
// The connections are closed at cleanup.
func silentRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A Redis that accepts connections and never answers holds a call no
// longer than the policy's timeouts.total: the gateway's Redis client
// bounds its commands by the call's deadline. Before, go-redis ignored
// the context's deadline (ContextTimeoutEnabled off) and the budget
// reservation waited for the client's own timeouts: 5s for a call whose
// total was 500ms.
func TestGatewaySilentRedisHoldsACallNoLongerThanItsTimeout(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\ntimeouts: {call: 300ms, total: 500ms}\n",
	}
	e := start(t, pols, fmt.Sprintf("redis: {addr: %q}\n", silentRedis(t)))
	e.upstream.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	start := time.Now()
	resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
	resp.Body.Close()
	el := time.Since(start)
	if resp.StatusCode == 200 {
		t.Fatal("a call whose budget could not be reserved was answered (the budget fails closed)")
	}
	if e.upstream.Count() != 0 {
		t.Fatal("a call whose budget could not be reserved reached the upstream")
	}
	// 500ms of timeouts.total, with room for a loaded machine; the client's
	// own timeouts, which the call waited for before, are 3s and 5s.
	if el > 2500*time.Millisecond {
		t.Fatalf("the call took %v with a silent Redis; its timeouts.total is 500ms", el)
	}
}

// With a Redis that accepts connections and never answers, the response
// cache (cache.store: redis) is a miss and the breakers' shared state is
// this replica's own: the call is answered, after at most a short wait
// for each. Before, the cache's lookup and the breaker's read waited for
// the call's whole deadline and the call failed (504 after timeouts.total,
// 4s here) although a cache and a shared breaker are only helpers.
func TestGatewaySilentRedisCacheAndBreakerDoNotFailCalls(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml": "version: 1\nname: devops\ntimeouts: {total: 4s}\ncache: {enabled: true, ttl: 1h, store: redis}\n" +
			"fallback:\n  breaker: {consecutive_failures: 2, open_for: 10m}\n",
	}
	e := start(t, pols, fmt.Sprintf("redis: {addr: %q}\n", silentRedis(t)))
	e.upstream.Default(openaitest.Text("ok"))
	body := `{"model":"gpt-4o-mini","max_tokens":20,"temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	for i := range 3 {
		start := time.Now()
		resp := e.do(t, "POST", "/v1/chat/completions", devopsKey, body)
		resp.Body.Close()
		el := time.Since(start)
		if resp.StatusCode != 200 {
			t.Fatalf("call %d with a silent Redis: %d after %v, want 200 (the cache is a miss, the breaker local)", i, resp.StatusCode, el)
		}
		// The first call waits for each helper's short timeout (0.25s,
		// 0.5s and 0.5s); the later ones skip Redis for a second.
		if el > 2500*time.Millisecond {
			t.Fatalf("call %d took %v with a silent Redis", i, el)
		}
	}
	if n := e.upstream.Count(); n != 3 {
		t.Fatalf("the upstream answered %d calls, want 3 (every lookup a miss)", n)
	}
}

// A Redis budget store that accepts connections and never answers is an
// outage of the gateway's own: every policed endpoint answers 503
// budget_store_unavailable (a server error an SDK retries), saying that
// the budget store did not answer — not a 429 insufficient_quota, which
// tells the caller its quota is spent and not to retry (the embeddings
// path's answer before), nor a 504 timeout of the call, which blames the
// upstream (the chat and Responses paths' answer before, when the store
// held the call to its timeouts.total). And no call waits for the store
// past its timeouts.total: the Responses and embeddings calls waited 5 s.
func TestGatewaySilentBudgetStoreIsAnOutageNotAQuota(t *testing.T) {
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\ntimeouts: {call: 300ms, total: 500ms}\n",
	}
	e := start(t, pols, fmt.Sprintf("redis: {addr: %q}\n", silentRedis(t)))
	e.upstream.Default(openaitest.Text("ok"))
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"gpt-4o-mini","max_output_tokens":20,"input":"hi"}`},
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":"hi"}`},
	} {
		began := time.Now()
		resp := e.do(t, "POST", c.path, devopsKey, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// 500ms of timeouts.total, with room for a loaded machine; the
		// store's own timeouts, which Responses and embeddings calls
		// waited for before (5 s), are 3 s and more.
		if el := time.Since(began); el > 2500*time.Millisecond {
			t.Errorf("%s took %v with a silent budget store; its timeouts.total is 500ms", c.path, el)
		}
		var body struct {
			Error struct{ Type, Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "budget_store_unavailable" || body.Error.Type != "server_error" ||
			!strings.Contains(body.Error.Message, "budget store unavailable") {
			t.Errorf("%s with a silent budget store: %d %s, want 503 budget_store_unavailable naming the store", c.path, resp.StatusCode, b)
		}
	}
	if e.upstream.Count() != 0 {
		t.Fatal("a call whose budget could not be reserved reached the upstream")
	}
}
