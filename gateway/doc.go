// Package gateway is tokenwise serve: an OpenAI-compatible HTTP gateway that
// runs every chat completion through the policy chain of its caller's team,
// so that services in any language get tokenwise's budgets, routing,
// caching and limits. Build one from a gateway file ([LoadConfig]) with
// [New]; see the README's Gateway section for the file and the endpoints.
// Serve it over HTTP ([Server.ListenAndServe], [Server.Handler]), or use it
// as a library in a Go service: [Server.Transport] serves a Go client
// (openai-go, whose Responses API it polices; go-openai; langchaingo) in
// the process, without a socket, by a virtual key; [Server.TransportFor]
// serves a service that is one team without one.
//
// # Runs
//
// Requests with the same [RunIDHeader] (X-Run-Id) are one run of the
// caller's team: they share its per-run budget, call limit and deadline.
// Without Redis a run lives in the replica that serves it. With Redis
// (the gateway file's redis section) it is one run in every replica
// (middleware.OpenSharedRun on an adapters/redis.RunStore): each call is
// numbered by one counter in Redis, so the run guard admits exactly its
// call limit over all replicas; the run's start, which its deadline runs
// from, is set by its first call in any replica; and its per-run budget
// is one ledger in the budget store, reserved and settled like a team's.
// The run's keys carry its team and id and expire limits.run_idle after
// its last call. A call Redis cannot number is refused (503
// run_store_unavailable). GET /v1/runs/{id} reports a run ([RunReport]):
// its calls, tokens, exact cost and savings, per model — with Redis over
// every replica, each finished call's figures summed in the run's hash.
//
// # The Responses API and embeddings
//
// POST /v1/responses and /v1/embeddings are passed to the upstream as they
// came, but policed as chat calls are: reserved in the team's and the
// run's budgets before they are sent and settled at the usage their
// answer reports (a background response's: held until a retrieval or
// cancellation through the gateway shows it done, and settled at that
// response's usage), admitted by the rate limits, bounded by the team's
// timeouts and the run's deadline; a Responses call is also routed by the
// team's routing rules, answered from its cache, and sent through its
// fallback section — retried, guarded by the same per-model breakers as
// the team's chat calls, moved on to the next fallback model, each model
// reserved at its own price, and hedged under fallback.hedge when it is
// not a stream —, and through the team's routing.cascade (an answer that
// fails a check charged and escalated to the next model; a stream held
// back until its final event to be checked) and routing.regenerate_final
// (a cheap model's final answer written again by the strong model,
// without tools).
//
// # Stored responses
//
// The gateway records the team that created each response it passes and
// answers another team's retrieval, input items listing, cancellation,
// deletion or previous_response_id of it with OpenAI's 404 for an unknown
// id (responses_owner.go); with Redis, the replicas share the record for
// 30 days. An id it never saw created passes. The other stateful objects
// (files, uploads, batches, vector stores, conversations, stored chat
// completions, containers, fine-tuning jobs, evals, assistants, threads)
// are kept to the team whose POST made them in the same way
// (objects_owner.go), their record without expiry (they live upstream
// until deleted; a deletion through the gateway drops it), and a family's list is filtered to the caller's
// team's own objects, paged from the upstream's pages; a Responses call's
// conversation is checked as its previous_response_id is. An object named
// inside a request's JSON body (a file_id given to a vector store, a
// batch's input_file_id, a Responses call's vector_store_ids (and those
// of a count of its input tokens or a compaction), a chat
// call's file part, tool_resources, attachments…) is checked too
// (bodyids.go): another team's is refused with its family's 404 before
// the upstream. So is another team's fine-tuned model (ft:…), as a call's
// model or by path, once the gateway saw the team's job make it, and
// GET /v1/models does not list it to another team.
//
// # Shared state
//
// With Redis, the replicas also share the team budgets, the response
// cache, the rate limits and the circuit breakers' open state; without
// it, each replica keeps its own in memory.
package gateway
