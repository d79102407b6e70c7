package redis_test

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	twredis "github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// Replicas share budgets, cached answers and artifacts through one Redis:
// pass the stores to llmwrap.Build and the tool executor. (No Output: the
// example needs a Redis server; the package's tests run against one at
// TOKENWISE_REDIS_ADDR.)
func Example() {
	// ContextTimeoutEnabled: a call's deadline bounds its Redis commands.
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()

	pol, err := policies.LoadFileExtends("examples/policies/devops.yaml")
	if err != nil {
		panic(err)
	}
	chain, err := llmwrap.Build(pol,
		llmwrap.WithBudgetStore(twredis.NewBudgetStore(rdb)),            // team and run budgets across replicas
		llmwrap.WithCacheStore(twredis.NewCacheStore(rdb, "tokenwise")), // one response cache for all
	)
	if err != nil {
		panic(err)
	}
	artifacts := twredis.NewArtifactStore(rdb, "tokenwise", 24*time.Hour) // large tool results, read back by any replica
	ex, err := llmwrap.NewExecutor(pol, nil, artifacts)
	if err != nil {
		panic(err)
	}
	_, _ = chain, ex
	ctx := middleware.WithTeam(context.Background(), "devops")
	_ = ctx // calls made with ctx are billed to team devops, on every replica
}
