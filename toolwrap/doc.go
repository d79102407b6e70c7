// Package toolwrap is the tool side of an agent: it runs an agent's tool
// calls on a budget and fast.
//
// An [Executor] is built like every tokenwise layer: New(tools, Config,
// ...Option), where Config is plain data whose zero fields are documented
// defaults or "off" (as gobreaker's Settings) and the functional options
// (as in connect-go and go-kit) carry code-side dependencies only (an
// artifact store). llmwrap.NewExecutor maps a policy's tools section to
// it; this package never reads a policy.
//
// A [Tool] is the core tool shape: name, description, JSON Schema of the
// arguments, a [Func] and its [Meta] (side effects, idempotent, timeout),
// declared in code or overridden by a policy's tools.per_tool section.
//
// An [Executor] runs one turn's calls ([Executor.Execute]):
//
//   - calls to tools without side effects run concurrently, at most
//     Config.MaxParallel at once (policy tools.max_parallel; zero: one at
//     a time);
//     a tool with side effects waits for the earlier calls, runs alone, and
//     the later calls wait for it; results come back in call order with
//     their call ids. A call given up on at its timeout while its tool,
//     ignoring its context, still runs is waited for up to its timeout
//     once more; if it still runs, a call of a tool with side effects
//     after it, and every call after such a tool, is not run ([ErrNotRun]):
//     nothing starts beside a tool with side effects; in the later turns
//     of the run (middleware.RunFrom) too, while that tool runs: a call
//     of a tool with side effects is not run beside it, and no call
//     beside such a tool;
//   - every call has its own timeout (Meta.Timeout, else the executor's),
//     built with context.WithTimeoutCause and [ErrTimeout]; the run's
//     context cancels everything, and so does the run's deadline
//     (Config.RunTimeout, from the run's start);
//   - an error, a timeout or a panic becomes an observation the model reads
//     ("tool clean_logs timed out after 30s"), never a crashed run, unless
//     Config.FailOnError is set;
//   - a result over the artifact threshold is stored ([Artifacts]) and the
//     conversation gets an excerpt (head and tail lines, the size, the id);
//     the read_artifact tool ([Artifacts.ReadTool]) reads it back by line
//     range or grep (a long line on by byte), bounded so it cannot flood
//     the context;
//   - successful results of idempotent tools are cached by tool name and
//     canonical arguments (Config.CacheTTL), bounded in entries and bytes
//     (Config.CacheSize, Config.CacheBytes).
//
// Every call is recorded in the run ([middleware.Run.RecordTool]) and
// emitted as [middleware.ToolFinished]; an offload emits
// [middleware.ArtifactStored], and the run report shows the tool time
// saved by parallel turns and the tokens kept out by artifacts.
//
// # Artifacts
//
// Artifact ids are random ([NewID]: 128 bits from crypto/rand) and scoped
// to the run that produced them and its team (middleware.WithTeam): a
// [Store] finds an artifact only under its run id (with the team's, when
// the context has one: two teams' runs of the same id are two scopes), so
// an agent steered by injected text to read another run's artifact gets
// "not found". Stores: [MemoryStore] (bounded by bytes; it
// never evicts an artifact of a run in progress, and refuses one that does
// not fit beside them with [ErrStoreFull]; the artifacts of ended runs are
// evicted least recently used first, and a read of an evicted one is
// [ErrEvicted]: read_artifact tells the agent it is no longer kept; the per-run store of
// [RunArtifacts] evicts nothing and refuses an artifact past
// [RunStoreBytes] with [ErrStoreFull]), [DirStore] (a directory) and the Redis store of
// adapters/redis. Context compaction reuses [Artifacts.Offload],
// [Artifacts.Get], [Artifacts.ReadRange] and [Artifacts.Grep].
//
// Adapters: adapters/langchaingo wraps tools.Tool and runs an agent's
// actions of one turn in parallel; adapters/openai turns a go-openai
// message's ToolCalls into tool messages.
package toolwrap
