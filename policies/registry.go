package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/internal/dirwatch"
)

// ErrUnknownTeam matches the error of a call whose team has no policy file
// when the default policy says teams: {unknown: error} (see UnknownTeamError).
var ErrUnknownTeam = errors.New("tokenwise/policies: unknown team")

// UnknownTeamError is the refusal of a call whose team has no policy file.
type UnknownTeamError struct {
	Team  string   // the caller's team
	Known []string // the teams that have a file, sorted
}

func (e *UnknownTeamError) Error() string {
	return fmt.Sprintf("tokenwise/policies: unknown team %q (teams with a policy file: %s)%s", e.Team, strings.Join(e.Known, ", "), suggest(e.Team, e.Known))
}

// Is matches ErrUnknownTeam.
func (e *UnknownTeamError) Is(target error) bool { return target == ErrUnknownTeam }

// Registry holds the policies of a directory, one per team, and swaps
// them atomically when files change (Reload, or Watch for hot reload).
//
// A reload re-reads every file and resolves extends again. A team whose
// file (or one of its bases) is now invalid keeps its last good policy and
// the problem is reported (Subscribe, and a slog warning); the other teams
// get their new policy. Readers never see a half-applied policy: Policy
// returns one immutable *Policy, and the set of all teams is replaced by
// one atomic store. A team whose file a reload reads as it was (every
// value from the same file and line) keeps its *Policy, so that readers
// can keep what they built for it.
//
// A Registry is safe for concurrent use.
type Registry struct {
	dir      string
	logger   *slog.Logger
	debounce time.Duration

	cur atomic.Pointer[regSnapshot]

	mu     sync.Mutex // serialises reloads and guards subs, baseDirs and weightNames
	subs   []subscriber
	nextID int
	// baseDirs are the directories other than dir holding files of the
	// last load's extends chains or its policies' learned weights, watched
	// beside dir.
	baseDirs []string
	// weightNames are the base names of the policies' learned weights
	// files: an event on one reloads (a retrained router).
	weightNames map[string]bool
}

type subscriber struct {
	id int
	fn func(Change)
}

type regSnapshot struct {
	gen   uint64
	teams map[string]*Policy
	files map[string]string
	def   *Policy
}

// Change reports one reload of a registry: which teams got a new policy
// and which files failed (their teams keep the last good policy).
type Change struct {
	Generation uint64            // increases with every reload that changed something
	Updated    []string          // teams whose policy was (re)loaded
	Removed    []string          // teams whose file disappeared
	Failed     map[string]error  // team → why its file was rejected
	Files      map[string]string // team → file
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// WithRegistryLogger sets the logger of reload problems. Default:
// slog.Default().
func WithRegistryLogger(l *slog.Logger) RegistryOption {
	return func(r *Registry) { r.logger = l }
}

// WithDebounce sets how long Watch waits after a file event before it
// reloads, so that an editor's burst of writes is read once. Default 50ms.
func WithDebounce(d time.Duration) RegistryOption {
	return func(r *Registry) { r.debounce = d }
}

// NewRegistry loads the policy directory dir. Startup is strict: any
// invalid file is an error (a *ValidationError listing every problem).
func NewRegistry(dir string, opts ...RegistryOption) (*Registry, error) {
	r := &Registry{dir: dir, logger: slog.Default(), debounce: 50 * time.Millisecond}
	for _, o := range opts {
		o(r)
	}
	set, dirs, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	r.baseDirs, r.weightNames = withWeights(dir, dirs, set.Teams)
	s := &regSnapshot{gen: 1, teams: set.Teams, files: set.Files}
	s.def = set.Policy(DefaultTeam)
	r.cur.Store(s)
	return r, nil
}

// Dir returns the registry's directory.
func (r *Registry) Dir() string { return r.dir }

// Policy returns the policy of team, or the default policy (default.yaml,
// else the embedded Default) for "" and teams without a file. It does not
// allocate.
func (r *Registry) Policy(team string) *Policy {
	s := r.cur.Load()
	if p, ok := s.teams[team]; ok {
		return p
	}
	return s.def
}

// Lookup is Policy with the generation of the registry it was read from,
// so that callers caching something per policy can tell when to refresh.
func (r *Registry) Lookup(team string) (*Policy, uint64) {
	s := r.cur.Load()
	if p, ok := s.teams[team]; ok {
		return p, s.gen
	}
	return s.def, s.gen
}

// Known reports whether team has a policy file, or is "" or "default"
// (the callers the default policy is for).
func (r *Registry) Known(team string) bool {
	if team == "" || team == DefaultTeam {
		return true
	}
	_, ok := r.cur.Load().teams[team]
	return ok
}

// Names returns the teams that have a policy file, sorted.
func (r *Registry) Names() []string {
	s := r.cur.Load()
	out := make([]string, 0, len(s.teams))
	for t := range s.teams {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Generation returns the number of the policies in force; it increases
// with every reload that changed something.
func (r *Registry) Generation() uint64 { return r.cur.Load().gen }

// Teams returns the teams that have a file, with their policies.
func (r *Registry) Teams() map[string]*Policy {
	s := r.cur.Load()
	out := make(map[string]*Policy, len(s.teams))
	for k, v := range s.teams {
		out[k] = v
	}
	return out
}

// Snapshot returns the teams' policies, the default policy and their
// generation, all read from one consistent state.
func (r *Registry) Snapshot() (teams map[string]*Policy, def *Policy, gen uint64) {
	s := r.cur.Load()
	teams = make(map[string]*Policy, len(s.teams))
	for k, v := range s.teams {
		teams[k] = v
	}
	return teams, s.def, s.gen
}

// Default returns the policy of calls without a team.
func (r *Registry) Default() *Policy { return r.cur.Load().def }

// Subscribe calls fn after every reload (also one that only failed), in
// the goroutine that reloaded, never under the registry's lock, in the
// order the subscriptions were made. It returns
// a function that cancels the subscription.
func (r *Registry) Subscribe(fn func(Change)) (cancel func()) {
	r.mu.Lock()
	id := r.nextID
	r.nextID++
	r.subs = append(r.subs, subscriber{id, fn})
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.subs = slices.DeleteFunc(r.subs, func(s subscriber) bool { return s.id == id })
		r.mu.Unlock()
	}
}

// Reload re-reads the directory and swaps in every team whose file is
// valid; invalid files keep their team's last good policy. It returns the
// problems of the rejected files, joined (nil when all are valid).
func (r *Registry) Reload() error {
	r.mu.Lock()
	ch, err := r.reloadLocked()
	subs := make([]func(Change), 0, len(r.subs))
	for _, s := range r.subs {
		subs = append(subs, s.fn)
	}
	r.mu.Unlock()
	if ch == nil {
		return err
	}
	for team, ferr := range ch.Failed {
		r.logger.Warn("tokenwise: policy reload rejected; the last good policy stays in force",
			"team", team, "file", ch.Files[team], "error", ferr)
	}
	for _, team := range ch.Updated {
		r.logger.Info("tokenwise: policy reloaded", "team", team, "file", ch.Files[team], "generation", ch.Generation)
	}
	for _, fn := range subs {
		fn(*ch)
	}
	return err
}

func (r *Registry) reloadLocked() (*Change, error) {
	res, dirs, err := loadTeams(r.dir)
	if err != nil {
		r.logger.Warn("tokenwise: policy directory unreadable; the last good policies stay in force", "dir", r.dir, "error", err)
		return &Change{Failed: map[string]error{"": err}, Generation: r.Generation()}, err
	}
	old := r.cur.Load()
	next := &regSnapshot{gen: old.gen, teams: make(map[string]*Policy, len(res)), files: make(map[string]string, len(res))}
	ch := &Change{Failed: map[string]error{}, Files: map[string]string{}}
	var errs []error
	present := map[string]bool{}
	for _, tr := range res {
		present[tr.team] = true
		ch.Files[tr.team] = tr.file
		if tr.err != nil {
			ch.Failed[tr.team] = tr.err
			errs = append(errs, tr.err)
			if p, ok := old.teams[tr.team]; ok {
				next.teams[tr.team] = p
				next.files[tr.team] = old.files[tr.team]
			}
			continue
		}
		next.teams[tr.team] = tr.policy
		next.files[tr.team] = tr.file
		if prev, ok := old.teams[tr.team]; !ok || !samePolicy(prev, tr.policy) {
			ch.Updated = append(ch.Updated, tr.team)
		} else if old.files[tr.team] == tr.file && sameLoaded(prev, tr.policy) {
			// The same policy, value for value and origin for origin:
			// the one in force stays, so that what readers built for it
			// (a chain, with what it learned) is kept.
			next.teams[tr.team] = prev
		}
	}
	for team := range old.teams {
		if !present[team] {
			ch.Removed = append(ch.Removed, team)
		}
	}
	r.baseDirs, r.weightNames = withWeights(r.dir, dirs, next.teams)
	if len(ch.Updated) > 0 || len(ch.Removed) > 0 {
		next.gen++
		if p, ok := next.teams[DefaultTeam]; ok {
			next.def = p
		} else if _, had := old.teams[DefaultTeam]; !had {
			next.def = old.def // (the embedded Default, as before)
		} else {
			next.def = Default()
		}
		r.cur.Store(next)
	}
	ch.Generation = r.cur.Load().gen
	return ch, errors.Join(errs...)
}

// samePolicy reports whether two loaded policies hold the same data: the
// same JSON — which tells apart what Explain does not (a *bool set to
// false from one left out, whose default is true; a map entry without a
// field set) —, the same explained values, and the same bytes of their
// learned weights files.
func samePolicy(a, b *Policy) bool {
	if a.weights != b.weights { // retrained weights, the policy file unchanged
		return false
	}
	ja, err := json.Marshal(a)
	if err != nil {
		return false
	}
	if jb, err := json.Marshal(b); err != nil || !bytes.Equal(ja, jb) {
		return false
	}
	ea, eb := a.Explain(), b.Explain()
	if len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].Path != eb[i].Path || ea[i].Value != eb[i].Value {
			return false
		}
	}
	return true
}

// sameLoaded reports whether two loaded policies are the same policy for
// every reader: the same data (samePolicy), each value from the same file
// and line.
func sameLoaded(a, b *Policy) bool {
	return samePolicy(a, b) && slices.Equal(a.Explain(), b.Explain())
}

// Watch reloads the registry whenever the policies of its directory
// change, until ctx is done; it blocks (run it in a goroutine you own and
// cancel ctx to stop it). See StartWatch for what counts as a change.
func (r *Registry) Watch(ctx context.Context) error {
	wait, err := r.StartWatch(ctx)
	if err != nil {
		return err
	}
	return wait()
}

// StartWatch puts a watch on the registry's directory and returns once it
// is in place, so that every change made after it returns is seen. A
// goroutine then reloads the registry until ctx is done; wait blocks until
// that goroutine has exited.
//
// A change is any create, write, rename or removal of a policy file
// (editors that save by writing a temporary file and renaming it over the
// policy are covered: the directory is watched, not the files), and any
// event on a name starting with ".." — a Kubernetes ConfigMap volume
// updates by creating a new ..<timestamp> directory and swapping the
// ..data symlink, which the visible policy files point through. Bursts of
// events within the debounce interval cause one reload.
//
// The directories of bases that extends chains read outside the top
// directory (extends: bases/common.yaml) are watched too; they are
// collected again after each reload, so a chain that starts extending a
// base in another subdirectory has it watched from then on. So are the
// policies' learned weights files (routing.learned.weights), wherever they
// are: a retrained file replaced in place reloads its teams (see
// [Policy.WeightsDigest]).
func (r *Registry) StartWatch(ctx context.Context) (wait func() error, err error) {
	baseDirs := func() []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(r.baseDirs)
	}
	trigger := func(name string) bool {
		if reloadTrigger(name) {
			return true
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.weightNames[name]
	}
	done, err := dirwatch.StartDirs(ctx, r.dir, baseDirs, r.debounce, trigger,
		func() { _ = r.Reload() }, // reported to subscribers and the logger
		func(err error) { r.logger.Warn("tokenwise: policy watcher error", "dir", r.dir, "error", err) })
	if err != nil {
		return nil, fmt.Errorf("tokenwise/policies: watching %s: %w", r.dir, err)
	}
	return func() error { done(); return nil }, nil
}

// reloadTrigger reports whether an event on name (a base name) may change
// the policies: a policy file, or a Kubernetes ConfigMap's ..data symlink
// or ..<timestamp> directory.
func reloadTrigger(name string) bool {
	return policyFile(name) || dirwatch.ConfigMapSwap(name)
}

// withWeights returns dirs with the directories of teams' learned weights
// files other than top, and the weights files' base names.
func withWeights(top string, dirs []string, teams map[string]*Policy) ([]string, map[string]bool) {
	var names map[string]bool
	topAbs := mustAbs(top)
	for _, p := range teams {
		f := p.WeightsFile()
		if f == "" {
			continue
		}
		if names == nil {
			names = map[string]bool{}
		}
		names[filepath.Base(f)] = true
		if d := filepath.Dir(mustAbs(f)); d != topAbs && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs, names
}
