//go:build race

package openai

// raceEnabled: the race detector is on. Its sync.Pool drops a random
// share of what is put back (to find misuse), so the allocations of a
// path that takes its scratch from a pool vary from run to run.
const raceEnabled = true
