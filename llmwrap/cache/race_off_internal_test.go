//go:build !race

package cache

// raceEnabled: the race detector is on (it allocates in instrumented
// code: allocation counts do not hold).
const raceEnabled = false
