package gateway

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pipeCount is a Redis hook that records the size of each pipeline.
type pipeCount struct{ sizes []int }

func (*pipeCount) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (*pipeCount) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (p *pipeCount) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		p.sizes = append(p.sizes, len(cmds))
		return next(ctx, cmds)
	}
}

// TestBodyIDsAreCheckedOnceEach: a body naming one id 100,000 times (a
// 1.2 MB body, under max_body) is one Redis command, not 100,000 in one
// pipeline; another team's id among repeated ones is still refused; a
// body naming more than maxBodyRefs distinct ids is a 400 too_many_ids,
// Redis not asked. Before, every id named was a command of the pipeline.
func TestBodyIDsAreCheckedOnceEach(t *testing.T) {
	addr := cmp.Or(os.Getenv("TOKENWISE_REDIS_ADDR"), "127.0.0.1:6379")
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s: %v", addr, err)
		}
		t.Skipf("Redis at %s is unreachable: %v", addr, err)
	}
	hook := &pipeCount{}
	rdb.AddHook(hook)
	key := fmt.Sprintf("tw-test-bodyids-%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, key+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	s := &Server{logger: slog.New(slog.DiscardHandler)}
	s.objects = responseOwners{rdb: rdb, key: key, forever: true}
	s.objects.record(ctx, s.logger, "devops", "file-dev")

	body := []byte(`{"file_ids":[` + strings.Repeat(`"file-x",`, 100000) + `"file-x"]}`)
	hook.sizes = nil
	if e := s.checkBodyIDs(ctx, "payments", body, true); e != nil {
		t.Fatalf("a body naming an unknown id 100,001 times: %v", e)
	}
	if len(hook.sizes) != 1 || hook.sizes[0] != 1 {
		t.Errorf("a body naming one id 100,001 times: pipelines of %v commands, want one of 1", hook.sizes)
	}

	body = []byte(`{"file_ids":[` + strings.Repeat(`"file-x",`, 50000) + `"file-dev",` + strings.Repeat(`"file-x",`, 50000) + `"file-dev"]}`)
	hook.sizes = nil
	if e := s.checkBodyIDs(ctx, "payments", body, true); e == nil || e.Status != http.StatusNotFound || !strings.Contains(e.Message, "file-dev") {
		t.Errorf("devops' file among 100,000 unknown ones: %v, want its 404", e)
	}
	if len(hook.sizes) != 1 || hook.sizes[0] > 2 {
		t.Errorf("two distinct ids: pipelines of %v commands, want one of at most 2", hook.sizes)
	}

	var many strings.Builder
	many.WriteString(`{"file_ids":["file-0"`)
	for i := 1; i <= maxBodyRefs; i++ {
		fmt.Fprintf(&many, `,"file-%d"`, i)
	}
	many.WriteString(`]}`)
	hook.sizes = nil
	if e := s.checkBodyIDs(ctx, "payments", []byte(many.String()), true); e == nil || e.Status != http.StatusBadRequest || e.Code != "too_many_ids" {
		t.Errorf("%d distinct ids: %v, want a 400 too_many_ids", maxBodyRefs+1, e)
	}
	if len(hook.sizes) != 0 {
		t.Errorf("%d distinct ids: Redis got pipelines of %v commands, want none", maxBodyRefs+1, hook.sizes)
	}
}
