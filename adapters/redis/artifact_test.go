package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// Two replicas share artifacts through Redis: one offloads a large result,
// the other reads it back in the same run; another run gets not found.
func TestArtifactStoreSharedAcrossReplicas(t *testing.T) {
	noLeaks(t)
	c := cacheRedis(t)
	prefix := cachePrefix(t, c)
	var b strings.Builder
	for i := 0; b.Len() < 256<<10; i++ {
		fmt.Fprintf(&b, "line %06d of the log\n", i)
	}
	log := b.String()
	replica := func() *toolwrap.Executor {
		arts := toolwrap.NewArtifacts(twredis.NewArtifactStore(c, prefix, time.Minute), toolwrap.ArtifactConfig{ThresholdBytes: 4096}, nil)
		ex, err := toolwrap.New([]toolwrap.Tool{{Name: "read_logs", Call: func(context.Context, string) (string, error) { return log, nil }}},
			toolwrap.Config{}, toolwrap.WithArtifacts(arts))
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	a, bRep := replica(), replica()
	ctx, _ := middleware.StartRun(t.Context(), "run-redis")
	res, err := a.Execute(ctx, []middleware.ToolCall{{ID: "1", Name: "read_logs"}})
	if err != nil || res[0].Artifact == "" {
		t.Fatalf("res %+v err %v", res[0].Artifact, err)
	}
	id := res[0].Artifact
	lines, total, err := bRep.Artifacts().ReadRange(ctx, id, 500, 3)
	if err != nil || total < 10000 || fmt.Sprint(lines) != "[line 000500 of the log line 000501 of the log line 000502 of the log]" {
		t.Fatalf("ReadRange: %q %d %v", lines, total, err)
	}
	m, err := bRep.Artifacts().Grep(ctx, id, `line 007777 `, 5)
	if err != nil || len(m) != 1 || m[0].Line != 7777 {
		t.Errorf("Grep: %+v %v", m, err)
	}
	other, _ := middleware.StartRun(t.Context(), "run-other")
	if _, err := bRep.Artifacts().Get(other, id); !errors.Is(err, toolwrap.ErrNotFound) {
		t.Errorf("another run: %v", err)
	}
	if ttl := c.TTL(t.Context(), twredis.NewArtifactStore(c, prefix, 0).Key("run-redis", id)).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL %v", ttl)
	}
}
