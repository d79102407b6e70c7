// Package redis is the shared-state adapter: it holds tokenwise's state for
// many replicas on one Redis server (github.com/redis/go-redis/v9): the
// budget ledger (atomic reserve and settle in Lua scripts, reservations with
// a TTL), and, in sibling files, the response cache, the artifact store,
// the rate limits' state (RateLimitStore: one Lua script per admission),
// the circuit breakers' open state (BreakerStore) and shared runs
// (RunStore: a run's call count and start).
//
// Every key is namespaced: a caller-chosen prefix (default "tokenwise"), then
// the concern ("budget", "cache", ...), then the policy and team scope, so
// that several policies and teams can share one server without collisions.
//
// The package depends on go-redis only through a redis.UniversalClient the
// caller passes in; it never dials on its own. Build that client with
// ContextTimeoutEnabled: true, as the gateway does: without it go-redis
// does not bound a command by its context's deadline, and a Redis that
// accepts connections but does not answer holds every call for the
// client's own timeouts (seconds) whatever the policy's timeouts say.
package redis
