package middleware_test

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// Runs opened on one key of a RunStore (one per replica) number their
// calls with one counter: concurrent calls on all of them get 1..n, each
// once; each Run takes the store's start; a run of this process keeps its
// own count; a store failure matches ErrRunStore.
func TestSharedRunNumbersCallsAcrossProcesses(t *testing.T) {
	t.Parallel()
	store := &middlewaretest.RunStore{IdleTime: time.Hour}
	first := time.Now().Add(-time.Minute)
	store.SetStart("team/r", first) // another replica saw the run first
	runs := []*middleware.Run{middleware.OpenSharedRun("r", "team/r", store), middleware.OpenSharedRun("r", "team/r", store)}
	if key, s := runs[0].Shared(); key != "team/r" || s != store {
		t.Fatalf("Shared() = %q, %v", key, s)
	}
	var mu sync.Mutex
	var seqs []int
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 25 {
				n, err := runs[i%2].NextSeqContext(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqs = append(seqs, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("call numbers are not 1..200 each once: %v at %d", n, i)
		}
	}
	for _, r := range runs {
		if !r.Started().Equal(first) || r.Seq() > 200 || r.Seq() < 100 {
			t.Fatalf("run started %v (want the store's %v), seq %d", r.Started(), first, r.Seq())
		}
	}

	_, local := middleware.StartRun(context.Background(), "r")
	if n, err := local.NextSeqContext(context.Background()); n != 1 || err != nil {
		t.Fatalf("a run of this process: call %d, %v", n, err)
	}
	if key, s := local.Shared(); key != "" || s != nil {
		t.Fatalf("a run of this process is shared: %q", key)
	}

	cause := errors.New("connection refused")
	store.Fail(cause)
	if _, err := runs[0].NextSeqContext(context.Background()); !errors.Is(err, middleware.ErrRunStore) || !errors.Is(err, cause) {
		t.Fatalf("store failure: %v, want ErrRunStore wrapping the cause", err)
	}
}

// randomCall is a finished call with every figure of a run's totals drawn
// at random: models (one with slashes in its name, and none), cache hits,
// errors, attempts on other models, savings, rate-limit waits.
func randomCall(rng *rand.Rand) middleware.CallRecord {
	models := []string{"gpt-4o", "gpt-4o-mini", "org/fine-tune/v2", ""}
	usage := func() middleware.Usage {
		n := func() int64 {
			if rng.IntN(3) == 0 {
				return 0
			}
			return rng.Int64N(1 << 40)
		}
		return middleware.Usage{InputTokens: n(), OutputTokens: n(), CachedInputTokens: n(), CacheWriteTokens: n(),
			ReasoningTokens: n(), AudioInputTokens: n(), AudioOutputTokens: n()}
	}
	c := middleware.CallRecord{Usage: usage(), Latency: time.Duration(rng.Int64N(int64(time.Minute)))}
	c.Model = models[rng.IntN(len(models))]
	c.CostPico, c.Saved, c.SavedPico = rng.Int64N(1<<50), usage(), rng.Int64N(1<<45)
	switch rng.IntN(5) {
	case 0:
		c.Cache = middleware.CacheHit
	case 1:
		c.Cache = middleware.CacheMiss
	}
	if rng.IntN(8) == 0 {
		c.Err = errors.New("upstream failed")
	}
	if rng.IntN(3) == 0 {
		c.RateWait = time.Duration(rng.Int64N(int64(time.Second)))
	}
	c.RateRefusals = rng.IntN(2)
	for range rng.IntN(4) {
		c.Attempts = append(c.Attempts, middleware.Attempt{Model: models[rng.IntN(len(models))], Usage: usage(), CostPico: rng.Int64N(1 << 50)})
	}
	return c
}

// A shared run whose store sums runs reports the calls of every process
// that shares it: recorded on three Runs of one key (three replicas) in
// random order, SharedState in each has the Totals of one run that
// recorded them all, figure for figure (per model too, names with slashes
// and empty ones included). A call whose figures the store did not take is
// counted as lost, and the sums lack it.
func TestSharedStateSumsEveryProcess(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		store := &middlewaretest.RunStore{IdleTime: time.Hour}
		runs := []*middleware.Run{middleware.OpenSharedRun("r", "team/r", store), middleware.OpenSharedRun("r", "team/r", store), middleware.OpenSharedRun("r", "team/r", store)}
		_, all := middleware.StartRun(context.Background(), "r")
		for range 1 + rng.IntN(30) {
			c := randomCall(rng)
			runs[rng.IntN(len(runs))].Record(c)
			all.Record(c)
		}
		want := all.Totals()
		want.Wall = 0
		for i, r := range runs {
			st, shared, lost, err := r.SharedState(context.Background())
			if err != nil || !shared || lost != 0 || st.Calls != 0 {
				t.Fatalf("seed %d run %d: shared %v, lost %d, err %v, %d numbered calls (none was numbered)", seed, i, shared, lost, err, st.Calls)
			}
			got := st.Sums
			got.Wall = 0
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d run %d: shared totals\n%+v\nwant the sum of every process's calls\n%+v", seed, i, got, want)
			}
		}
		// A store that cannot take a call's figures: counted, not summed.
		store.Fail(errors.New("store down"))
		runs[0].Record(randomCall(rng))
		store.Fail(nil)
		st, shared, lost, err := runs[0].SharedState(context.Background())
		got := st.Sums
		got.Wall = 0
		if err != nil || !shared || lost != 1 || !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: after a lost call: shared %v, lost %d (want 1), err %v, sums changed: %v", seed, shared, lost, err, !reflect.DeepEqual(got, want))
		}
		if local := runs[0].Totals(); local.Calls == 0 {
			t.Fatal("the lost call is not in this process's own record")
		}
	}
	// A run of this process only: its own totals, not shared.
	_, local := middleware.StartRun(context.Background(), "solo")
	local.Record(middleware.CallRecord{Usage: middleware.Usage{InputTokens: 3}})
	local.NextSeq()
	if st, shared, _, err := local.SharedState(context.Background()); shared || err != nil || st.Sums.Usage.InputTokens != 3 || st.Sums.Calls != 1 || st.Calls != 1 {
		t.Fatalf("a local run's SharedState: %+v shared %v err %v", st, shared, err)
	}
}

// Fields and TotalsFromFields are inverse on any Totals (Wall aside), and
// summing the fields of several Totals name by name is summing them.
func TestTotalsFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		_, r := middleware.StartRun(context.Background(), "r")
		var fields []middleware.TotalsField
		for range rng.IntN(6) {
			c := randomCall(rng)
			r.Record(c)
			fields = append(fields, middleware.CallTotals(c).Fields()...)
		}
		want := r.Totals()
		want.Wall = 0
		if got := middleware.TotalsFromFields(want.Fields()); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, want)
		}
		if got := middleware.TotalsFromFields(fields); !reflect.DeepEqual(got, want) {
			t.Fatalf("sum of the calls' fields:\n%+v\nwant\n%+v", got, want)
		}
	}
	// Every figure of a Totals, a field added later included (by
	// reflection; Wall is not a sum and has no field).
	var full middleware.Totals
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case v.Type().Field(i).Name == "Wall":
		case f.CanInt():
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Struct: // a Usage: its counts (its service tier is no figure of a sum)
			for j := range f.NumField() {
				if f.Field(j).CanInt() {
					f.Field(j).SetInt(int64(100*i + j + 1))
				}
			}
		case f.Kind() == reflect.Map:
			full.ByModel = map[string]middleware.ModelTotals{"m": {Calls: 1, CacheHits: 2, CostPico: 3, SavedPico: 4, Usage: middleware.Usage{InputTokens: 5, AudioOutputTokens: 6}}}
		default:
			t.Fatalf("Totals.%s: a figure of a kind this test does not fill", v.Type().Field(i).Name)
		}
	}
	if got := middleware.TotalsFromFields(full.Fields()); !reflect.DeepEqual(got, full) {
		t.Fatalf("every figure:\n%+v\nwant\n%+v", got, full)
	}
	if got := middleware.TotalsFromFields([]middleware.TotalsField{{Name: "a_future_figure", Value: 3}, {Name: "model/x", Value: 1}, {Name: "calls", Value: 2}}); got.Calls != 2 || len(got.ByModel) != 0 {
		t.Fatalf("unknown names are left out: %+v", got)
	}
}

// SatAdd and SatMul are a + b and a × b clamped to the int64 range
// (checked against exact big-integer results, at the edges and at random).
func TestSatAdd(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	edges := []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}
	check := func(a, b int64) {
		want := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		if want.Cmp(big.NewInt(math.MaxInt64)) > 0 {
			want.SetInt64(math.MaxInt64)
		} else if want.Cmp(big.NewInt(math.MinInt64)) < 0 {
			want.SetInt64(math.MinInt64)
		}
		if got := middleware.SatAdd(a, b); got != want.Int64() {
			t.Fatalf("SatAdd(%d, %d) = %d, want %d", a, b, got, want.Int64())
		}
		prod := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
		if prod.Cmp(big.NewInt(math.MaxInt64)) > 0 {
			prod.SetInt64(math.MaxInt64)
		} else if prod.Cmp(big.NewInt(math.MinInt64)) < 0 {
			prod.SetInt64(math.MinInt64)
		}
		if got := middleware.SatMul(a, b); got != prod.Int64() {
			t.Fatalf("SatMul(%d, %d) = %d, want %d", a, b, got, prod.Int64())
		}
	}
	for _, a := range edges {
		for _, b := range edges {
			check(a, b)
		}
	}
	for range 10000 {
		check(int64(rng.Uint64()), int64(rng.Uint64()))
		check(rng.Int64N(1<<33)-1<<32, rng.Int64N(1<<33)-1<<32) // products that fit, and some that do not
	}
}
