package breaker

import (
	"sync"
	"testing"
)

// TestGetOfAKnownModelTakesNoLock: a call to a model whose breaker exists
// finds it without the Set's lock, so that concurrent calls do not queue
// on it (before, every call locked it: this test then hangs, holding the
// lock while it looks the breaker up, until the test binary's timeout).
func TestGetOfAKnownModelTakesNoLock(t *testing.T) {
	s, err := New(Config{ConsecutiveFailures: 5})
	if err != nil {
		t.Fatal(err)
	}
	first := s.get("gpt-4o")
	s.mu.Lock()
	got := make(chan *modelBreaker)
	go func() { got <- s.get("gpt-4o") }()
	b := <-got
	s.mu.Unlock()
	if b != first {
		t.Fatalf("get returned a second breaker for gpt-4o: %p, first %p", b, first)
	}
}

// TestGetMakesOneBreakerPerModel: concurrent first calls of a model share
// one breaker (its counts and state), whichever creates it.
func TestGetMakesOneBreakerPerModel(t *testing.T) {
	s, err := New(Config{ConsecutiveFailures: 5})
	if err != nil {
		t.Fatal(err)
	}
	models := []string{"a", "b", "c", "d"}
	const goroutines = 16
	got := make([][]*modelBreaker, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for _, m := range models {
				got[g] = append(got[g], s.get(m))
			}
		})
	}
	wg.Wait()
	for g := range goroutines {
		for i, m := range models {
			if got[g][i] != got[0][i] {
				t.Fatalf("goroutine %d got breaker %p for %q, goroutine 0 got %p", g, got[g][i], m, got[0][i])
			}
			if got[g][i].cb.Name() != m {
				t.Fatalf("breaker of %q is named %q", m, got[g][i].cb.Name())
			}
		}
	}
}
