package redis_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
)

// droppingProxy forwards TCP connections to the test Redis; armed, it
// throws away the next reply Redis sends (the command ran) and closes
// that connection, as when a connection drops between a script's run and
// its reply. go-redis then retries the command on a new connection.
type droppingProxy struct {
	ln    net.Listener
	armed atomic.Bool
	drops atomic.Int32
}

func newDroppingProxy(t *testing.T) *droppingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &droppingProxy{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", redisAddr())
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, r)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(r, c); r.Close() })
			wg.Go(func() {
				defer c.Close()
				defer r.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := r.Read(buf)
					if n > 0 {
						if p.armed.CompareAndSwap(true, false) {
							p.drops.Add(1)
							return
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// A reserve or a settle whose connection dropped after Redis ran its
// script, before the reply, is retried by go-redis (io.EOF: MaxRetries,
// 3 by default) and runs a second time. Before, the second settle found
// no reservation and charged the call again (spend counted twice), and a
// second reserve weighed the call against its own reservation: a false
// refusal at the limit (and the reservation it had made, never settled,
// charged at its TTL for a call never made), or the amount held twice.
func TestScriptRetriedAfterADroppedReplyCountsOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewBudgetStore(pc)
	direct := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := window()
	key := prefix + ":budget:p:team"
	res := func(id string, usd int64) budget.Reservation {
		return budget.Reservation{Key: key, ID: id, Need: budget.Amount{USDMicros: usd, Tokens: 100},
			Limit: budget.Amount{USDMicros: 1000}, Window: w, Now: time.Now(), TTL: time.Minute}
	}
	// Load the scripts through the proxy.
	h, err := s.Reserve(ctx, res("warm", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Settle(ctx, budget.Amount{USDMicros: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}

	proxy.armed.Store(true)
	h, err = s.Reserve(ctx, res("a", 600))
	if proxy.drops.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	if err != nil {
		t.Fatalf("reserve of 600 of 1000 (1 spent) retried after a dropped reply: %v", err)
	}
	bal, err := direct.Balance(ctx, key, w, time.Now())
	if err != nil || bal.Reserved.USDMicros != 600 || bal.InFlight != 1 {
		t.Fatalf("after a retried reserve: %+v %v, want 600 reserved by one call", bal, err)
	}

	proxy.armed.Store(true)
	bal, err = h.Settle(ctx, budget.Amount{USDMicros: 400, Tokens: 50}, time.Now())
	if proxy.drops.Load() != 2 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	if err != nil {
		t.Fatal(err)
	}
	if bal.Used.USDMicros != 401 || bal.Used.Tokens != 50 || !bal.Reserved.IsZero() || bal.InFlight != 0 {
		t.Fatalf("after a retried settle: %+v, want 401 used (1 + 400), nothing reserved", bal)
	}
}

// A run's call whose figures were added by a script go-redis retried
// (the connection dropped after Redis ran it) is summed once. Before, the
// retry added the call's cost and tokens a second time to the run's
// sums that every replica reports.
func TestRunSumsRetriedAfterADroppedReplyCountOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewRunStore(pc, prefix, time.Minute)
	ctx := context.Background()
	call := middleware.Totals{Calls: 1, CostPico: 1_234_567, Usage: middleware.Usage{InputTokens: 100, OutputTokens: 7}}
	if err := s.AddCall(ctx, "team/r", call); err != nil { // loads the script
		t.Fatal(err)
	}
	proxy.armed.Store(true)
	if err := s.AddCall(ctx, "team/r", call); err != nil {
		t.Fatal(err)
	}
	if proxy.drops.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	st, ok, err := s.Sums(ctx, "team/r")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if st.Sums.Calls != 2 || st.Sums.CostPico != 2*call.CostPico || st.Sums.Usage.InputTokens != 200 {
		t.Fatalf("sums of two calls: %d calls, %d pico-dollars, %d input tokens; want 2, %d, 200",
			st.Sums.Calls, st.Sums.CostPico, st.Sums.Usage.InputTokens, 2*call.CostPico)
	}
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if ttl := c.PTTL(ctx, iter.Val()).Val(); ttl < 0 {
			t.Errorf("key %s has no TTL", iter.Val())
		}
	}
}

// A run's call numbered by a script go-redis retried (the connection
// dropped after Redis ran it) gets one number. Before, the retry counted
// the call twice: a number was skipped, and the run guard refused the
// run's last calls (429 run_call_limit) before it had made them.
func TestRunCallNumberedByARetriedScriptCountsOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewRunStore(pc, prefix, time.Minute)
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		proxy.armed.Store(want == 2)
		n, _, err := s.Next(ctx, "team/r", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("call %d numbered %d (dropped replies: %d)", want, n, proxy.drops.Load())
		}
	}
	if proxy.drops.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if ttl := c.PTTL(ctx, iter.Val()).Val(); ttl < 0 {
			t.Errorf("key %s has no TTL", iter.Val())
		}
	}
}

// A rate-limit settlement run by a script go-redis retried (the
// connection dropped after Redis ran it) is applied once. Before, a
// refund (a call that used fewer tokens than it reserved) was applied
// twice: the shared cell gave back tokens no call had returned, and the
// replicas were admitted past the tokens-per-minute limit.
func TestRateLimitSettlementRetriedAfterADroppedReplyAppliesOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewRateLimitStore(pc)
	ctx := context.Background()
	key := "{" + prefix + ":rl:m}:tpm"
	// 1000 tokens a minute, all of them at once.
	cells := []ratelimit.Cell{{Key: key, Name: "tpm", Interval: 60 * time.Millisecond, Tolerance: time.Minute, Tokens: true}}
	if d, err := s.Admit(ctx, &ratelimit.Admission{Cells: cells, Requests: 1, Tokens: 1000}); err != nil || !d.OK {
		t.Fatalf("admission of 1000 tokens: %+v %v", d, err)
	}
	before, err := c.Get(ctx, key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	proxy.armed.Store(true)
	// The call used 600 of its 1000 tokens: 400 back.
	if err := s.Settle(ctx, &ratelimit.Settlement{Cells: cells, Tokens: -400}); err != nil {
		t.Fatal(err)
	}
	if proxy.drops.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	after, err := c.Get(ctx, key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := time.Duration(before-after)*time.Microsecond, 400*60*time.Millisecond; got != want {
		t.Fatalf("a refund of 400 tokens moved the cell back %v, want %v", got, want)
	}
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if ttl := c.PTTL(ctx, iter.Val()).Val(); ttl < 0 {
			t.Errorf("key %s has no TTL", iter.Val())
		}
	}
}

// An admission whose script go-redis retried (the connection dropped
// after Redis ran it) is admitted once. Before, the retry ran the script
// again: with a concurrency limit of 1 it found the slot the first run
// took and refused the call, and that lease, never released, held the
// model's only slot for its TTL (2 minutes by default) in every replica;
// with a limit of one request a minute the retry refused the call the
// first run had admitted (and charged).
func TestRateLimitAdmissionRetriedAfterADroppedReplyAdmitsOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewRateLimitStore(pc)
	ctx := context.Background()
	slots := []ratelimit.Slot{{Key: "{" + prefix + ":rl:m}:conc", Name: "concurrency", Max: 1}}
	cells := []ratelimit.Cell{{Key: "{" + prefix + ":rl:m}:rpm", Name: "rpm", Interval: time.Minute, Tolerance: time.Minute}}
	adm := func(lease string) ratelimit.Decision {
		d, err := s.Admit(ctx, &ratelimit.Admission{Slots: slots, Requests: 1, Lease: lease, LeaseTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := adm("warm"); !d.OK { // loads the script
		t.Fatalf("first admission: %+v", d)
	}
	if err := s.Settle(ctx, &ratelimit.Settlement{Slots: slots, Lease: "warm"}); err != nil {
		t.Fatal(err)
	}
	proxy.armed.Store(true)
	if d := adm("a"); !d.OK || proxy.drops.Load() != 1 {
		t.Fatalf("an admission retried after a dropped reply: %+v (dropped %d), want admitted", d, proxy.drops.Load())
	}
	// One request a minute.
	proxy.armed.Store(true)
	d, err := s.Admit(ctx, &ratelimit.Admission{Cells: cells, Requests: 1})
	if err != nil || !d.OK || d.Wait != 0 || proxy.drops.Load() != 2 {
		t.Fatalf("the minute's only request, retried after a dropped reply: %+v %v (dropped %d), want admitted at once", d, err, proxy.drops.Load())
	}
	if d, err := s.Admit(ctx, &ratelimit.Admission{Cells: cells, Requests: 1}); err != nil || d.OK {
		t.Fatalf("a second request in the minute: %+v %v, want refused", d, err)
	}
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if ttl := c.PTTL(ctx, iter.Val()).Val(); ttl < 0 {
			t.Errorf("key %s has no TTL", iter.Val())
		}
	}
}

// A warning flag whose Mark go-redis resent after a dropped reply (the
// flag was set by the first run) is still reported as marked by this
// call, so that its warning is sent once; a second Mark of the flag by
// another call finds it set. Before, the resend's SETNX answered "already
// set", and the warning was never sent.
func TestMarkRetriedAfterADroppedReplyMarksOnce(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newDroppingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewBudgetStore(pc)
	ctx := context.Background()
	if _, err := s.Mark(ctx, prefix+":warm", time.Minute, time.Now()); err != nil { // load the script through the proxy
		t.Fatal(err)
	}
	flag := prefix + ":budget:p:team:warn:80"
	proxy.armed.Store(true)
	first, err := s.Mark(ctx, flag, time.Minute, time.Now())
	if proxy.drops.Load() != 1 {
		t.Fatalf("the proxy dropped %d replies", proxy.drops.Load())
	}
	if err != nil || !first {
		t.Fatalf("the first Mark, retried after a dropped reply: %v %v, want marked", first, err)
	}
	if again, err := s.Mark(ctx, flag, time.Minute, time.Now()); err != nil || again {
		t.Fatalf("a second Mark: %v %v, want already set", again, err)
	}
	if d := c.PTTL(ctx, flag).Val(); d <= 0 || d > time.Minute {
		t.Fatalf("the flag's TTL is %v, want (0, 1m]", d)
	}
}
