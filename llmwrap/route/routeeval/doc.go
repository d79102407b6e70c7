// Package routeeval is the router's test bench: it measures a router before
// you trust it: it replays labelled queries (which of a weak and a strong
// model answered each one well) through a scorer and reports what routing by
// that score would have cost and recovered.
//
// It lives beside package route, not in it: it is offline analysis, not a
// middleware, and it depends on route (to replay a policy's rules) and on
// route/learn (the learned scorer it trains), never the other way round.
// `tokenwise route eval` and `tokenwise route train` are its command line.
//
// # Measures
//
// A scorer gives each query a score, higher meaning more in need of the
// strong model; routing the top fraction f of the queries to the strong
// model gives the accuracy curve acc(f), from the weak model's accuracy at
// f = 0 to the strong model's at f = 1 (tied scores are broken at random:
// the curve is linear across a tie). From it, as RouteLLM defines them:
//
//	PGR(f)  = (acc(f) − acc_weak) / (acc_strong − acc_weak)   performance gap recovered
//	APGR    = ∫₀¹ PGR(f) df                                  0.5 for random routing
//	CPT(x)  = the smallest f with PGR(f) ≥ x                  call-performance threshold
//
// Evaluate adds the band of 200 seeded random routers (mean, 5th and 95th
// percentile of acc at every percent of f, and of their APGR), the oracle
// (the queries ordered by strong − weak: the best any router can do at
// every f), the cheapest threshold reaching a quality target with its
// share of strong calls and its cost against all-strong (Prices), and for
// a first-match rule policy (Policy) its single operating point compared
// with random routers at the same share of strong calls. EvaluateTransfer
// applies the threshold fitted on one file to another.
//
// # Scorers
//
// Length (bytes of the query), CategoryBaseline (per-category prior,
// cross-fitted), Learned (a route/learn model, trained here by Train) and
// Policy (a policy's router). Synthetic makes deterministic labelled data
// for tests and examples. The labelled JSONL format is documented on Read.
package routeeval
