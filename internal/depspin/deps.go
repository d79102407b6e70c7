// Package depspin pins dependencies for the packages being written.
package depspin

import (
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/hashicorp/golang-lru/v2/expirable"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/tiktoken-go/tokenizer"
	_ "github.com/tmc/langchaingo/agents"
	_ "github.com/tmc/langchaingo/chains"
	_ "github.com/tmc/langchaingo/llms/cache"
	_ "github.com/tmc/langchaingo/llms/cache/inmemory"
	_ "github.com/tmc/langchaingo/llms/openai"
	_ "github.com/tmc/langchaingo/tools"
	_ "go.opentelemetry.io/otel/exporters/prometheus"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.opentelemetry.io/otel/sdk/trace/tracetest"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sync/singleflight"
)
