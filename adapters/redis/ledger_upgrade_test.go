package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/adapters/redis"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// TestTeamLedgerOfAnEarlierVersionCountsAfterTheUpgrade: earlier versions
// keyed a team's ledger on its policy's name ("<prefix>:budget:<policy
// name>:<team>"); the key is now the team's ("<prefix>:budget:<team>:<team>",
// unchanged for a team whose policy is named after it). What a team that
// runs under another policy's name (here the default policy) spent this
// period under the old key, in Redis, still counts against its limit after
// the upgrade: the budget is not spent a second time.
func TestTeamLedgerOfAnEarlierVersionCountsAfterTheUpgrade(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	store := redis.NewBudgetStore(c)
	ctx := context.Background()
	now := time.Now()
	w := budget.WindowFor(budget.PeriodDaily, 0, now)
	// The spend an earlier version settled for team payments under the
	// default policy: $0.00995 of $0.01.
	hold, err := store.Reserve(ctx, budget.Reservation{Key: prefix + ":budget:default:payments", ID: "old-1",
		Need: budget.Amount{USDMicros: 9_950}, Window: w, Now: now, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Settle(ctx, budget.Amount{USDMicros: 9_950, Tokens: 1000}, now); err != nil {
		t.Fatal(err)
	}
	b, err := budget.New(budget.Config{
		Name:      "default",
		Request:   budget.RequestLimit{MaxOutputTokens: 200},
		Team:      budget.TeamLimit{Period: budget.PeriodDaily, Limit: budget.Amount{USDMicros: 10_000}},
		KeyPrefix: prefix,
	}, budget.WithStore(store), budget.WithCatalog(llmwrap.Catalog(policies.Default())))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.TeamKey("default"), prefix+":budget:default:default"; got != want {
		t.Errorf("the key of a team named as its policy is %q, want the earlier %q", got, want)
	}
	rem, err := b.Remaining(ctx, "payments")
	if err != nil || rem.Used.USDMicros != 9_950 {
		t.Fatalf("payments' spend after the upgrade: %+v (%v), want the $0.00995 of the earlier ledger", rem.Balance, err)
	}
	calls := 0
	h := b.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		calls++
		return &middleware.Response{Model: "gpt-4o", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			Usage: middleware.Usage{InputTokens: 10, OutputTokens: 10}}, nil
	}))
	_, err = h.Handle(middleware.WithTeam(ctx, "payments"), &middleware.Request{Model: "gpt-4o",
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Check the disk."}}})
	var e *budget.ExceededError
	if !errors.Is(err, budget.ErrExceeded) || !errors.As(err, &e) || calls != 0 {
		t.Fatalf("a call past what the earlier ledger left: %v after %d calls, want the team budget exceeded", err, calls)
	}
	if e.Limit != 10_000 || e.Used != 9_950 {
		t.Errorf("the refusal says limit %d, used %d; want 10000 and 9950", e.Limit, e.Used)
	}
}

// TestRunLedgerOfAnEarlierVersionCountsAfterTheUpgrade: earlier versions
// keyed a shared run's ledger on its policy's name ("<prefix>:budget:<policy
// name>:run:<run key>"); the key is now the run's ("<prefix>:budget::run:<run
// key>"). What a run spent under the old key, in Redis, before the upgrade
// still counts against its limit after it: the run does not spend its
// budget a second time.
func TestRunLedgerOfAnEarlierVersionCountsAfterTheUpgrade(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	store := redis.NewBudgetStore(c)
	ctx := context.Background()
	now := time.Now()
	// The spend an earlier version settled for run devops/r under the
	// policy named devops: $0.00995 of $0.01.
	hold, err := store.Reserve(ctx, budget.Reservation{Key: prefix + ":budget:devops:run:devops/r", ID: "old-1",
		Need: budget.Amount{USDMicros: 9_950}, Now: now, TTL: time.Minute, Idle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Settle(ctx, budget.Amount{USDMicros: 9_950, Tokens: 1000}, now); err != nil {
		t.Fatal(err)
	}
	b, err := budget.New(budget.Config{
		Name:      "devops",
		Request:   budget.RequestLimit{MaxOutputTokens: 200},
		Run:       budget.Amount{USDMicros: 10_000},
		KeyPrefix: prefix,
	}, budget.WithStore(store), budget.WithCatalog(llmwrap.Catalog(policies.Default())))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.RunKey("devops/r"), prefix+":budget::run:devops/r"; got != want {
		t.Errorf("the run's ledger key is %q, want %q", got, want)
	}
	run := middleware.OpenSharedRun("r", "devops/r", redis.NewRunStore(c, prefix, time.Hour))
	bal, err := b.RunBalanceContext(ctx, run)
	if err != nil || bal.Used.USDMicros != 9_950 {
		t.Fatalf("the run's spend after the upgrade: %+v (%v), want the $0.00995 of the earlier ledger", bal, err)
	}
	calls := 0
	h := b.Middleware()(middleware.HandlerFunc(func(context.Context, *middleware.Request) (*middleware.Response, error) {
		calls++
		return &middleware.Response{Model: "gpt-4o", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
			Usage: middleware.Usage{InputTokens: 10, OutputTokens: 10}}, nil
	}))
	_, err = h.Handle(middleware.WithRun(ctx, run), &middleware.Request{Model: "gpt-4o",
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Check the disk."}}})
	var e *budget.ExceededError
	if !errors.Is(err, budget.ErrExceeded) || !errors.As(err, &e) || calls != 0 {
		t.Fatalf("a call past what the earlier ledger left: %v after %d calls, want the run budget exceeded", err, calls)
	}
	if e.Scope != "run" || e.Limit != 10_000 || e.Used != 9_950 {
		t.Errorf("the refusal says scope %q, limit %d, used %d; want run, 10000 and 9950", e.Scope, e.Limit, e.Used)
	}
}
