package redis_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// holdingProxy forwards TCP connections to the test Redis; while held,
// Redis's replies are kept back from the client (the commands still
// reach Redis and run), as when a reply is lost or late on the network.
type holdingProxy struct {
	ln   net.Listener
	mu   sync.Mutex
	held bool
	cond *sync.Cond
	wg   sync.WaitGroup
	done bool
}

func newHoldingProxy(t *testing.T) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{ln: ln}
	p.cond = sync.NewCond(&p.mu)
	var conns []net.Conn
	var cmu sync.Mutex
	p.wg.Go(func() {
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
			cmu.Lock()
			conns = append(conns, c, r)
			cmu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(r, c); r.Close() })
			p.wg.Go(func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := r.Read(buf)
					if n > 0 {
						p.mu.Lock()
						for p.held && !p.done {
							p.cond.Wait()
						}
						p.mu.Unlock()
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.set(false)
		p.mu.Lock()
		p.done = true
		p.cond.Broadcast()
		p.mu.Unlock()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *holdingProxy) set(held bool) {
	p.mu.Lock()
	p.held = held
	p.cond.Broadcast()
	p.mu.Unlock()
}

// TestReservationWhoseReplyIsLostIsReleased: a reservation whose script
// ran in Redis but whose reply the caller never read (its deadline came
// first) is a refusal to the caller, who never makes the call; the store
// releases it, instead of leaving it held until its TTL and then charged
// at its worst case — a spend for a call that was never made.
func TestReservationWhoseReplyIsLostIsReleased(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	proxy := newHoldingProxy(t)
	pc := goredis.NewClient(&goredis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	defer pc.Close()
	s := redis.NewBudgetStore(pc)
	direct := redis.NewBudgetStore(c)
	ctx := context.Background()
	w := budget.Window{}
	key := prefix + ":budget:lost:devops"
	res := func(id string) budget.Reservation {
		return budget.Reservation{Key: key, ID: id, Need: budget.Amount{USDMicros: 5000, Tokens: 700},
			Limit: budget.Amount{USDMicros: 1_000_000}, Window: w, Now: time.Now(), TTL: time.Minute}
	}
	// A first reservation through the proxy loads the script.
	h, err := s.Reserve(ctx, res("warm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Settle(ctx, budget.Amount{}, time.Now()); err != nil {
		t.Fatal(err)
	}

	proxy.set(true)
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.Reserve(rctx, res("lost"))
	cancel()
	if err == nil {
		t.Fatal("a reservation whose reply never came succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("the reservation failed with %v", err)
	}
	// The script ran: Redis holds the reservation until it is released.
	proxy.set(false)
	deadline := time.Now().Add(5 * time.Second)
	var bal budget.Balance
	for {
		if bal, err = direct.Balance(ctx, key, w, time.Now()); err != nil {
			t.Fatal(err)
		}
		if bal.Reserved.IsZero() || time.Now().After(deadline) {
			break
		}
		runtime.Gosched() // the release runs beside the refusal
	}
	if !bal.Reserved.IsZero() || bal.InFlight != 0 || !bal.Used.IsZero() {
		t.Fatalf("ledger %+v after a reservation the caller gave up on: want nothing held (it would be charged at its TTL)", bal)
	}
}
