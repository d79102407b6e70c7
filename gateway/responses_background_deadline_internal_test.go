package gateway

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// deadlinePipes counts the pipelines of GETs sent to Redis (not a new
// connection's setup), each answered as its context's deadline passes.
type deadlinePipes struct{ n int }

func (*deadlinePipes) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (*deadlinePipes) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (p *deadlinePipes) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "get" {
			return next(ctx, cmds)
		}
		p.n++
		err := next(ctx, cmds)
		if dl, ok := ctx.Deadline(); ok {
			time.Sleep(time.Until(dl))
		}
		return err
	}
}

// A closing gateway reading the answers other replicas shared for its
// background holds (two pipelines' worth) from a Redis whose first answer
// comes as the read's deadline passes sends no second pipeline at that
// deadline. The context's timer fires at that instant too, and its
// goroutine may not have run yet when the answer comes, so each round
// plays the race once more.
func TestNoSharedDoneReadAtTheDeadline(t *testing.T) {
	addr := cmp.Or(os.Getenv("TOKENWISE_REDIS_ADDR"), "127.0.0.1:6379")
	synctest.Test(t, func(t *testing.T) {
		rdb := goredis.NewClient(&goredis.Options{Addr: addr})
		defer rdb.Close()
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("Redis at %s: %v", addr, err)
			}
			t.Skipf("Redis at %s is unreachable: %v", addr, err)
		}
		pipes := &deadlinePipes{}
		rdb.AddHook(pipes)
		d := &backgroundDone{rdb: rdb, prefix: fmt.Sprintf("twtest-bgdeadline-%d:", time.Now().UnixNano()), ttl: time.Minute}
		holds := make([]*backgroundHold, backgroundDoneBatch+1)
		for i := range holds {
			holds[i] = &backgroundHold{team: "team-a", id: fmt.Sprintf("resp_%d", i)}
		}
		for round := range 200 {
			pipes.n = 0
			out := d.getAll(context.Background(), holds)
			if len(out) != len(holds) {
				t.Fatalf("round %d: %d answers for %d holds", round, len(out), len(holds))
			}
			if pipes.n != 1 {
				t.Fatalf("round %d: %d pipelines sent, want 1: none is sent at the read's deadline", round, pipes.n)
			}
		}
	})
}
