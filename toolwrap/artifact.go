package toolwrap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// Store keeps artifacts, scoped by run: an artifact is found only under
// the run and id it was put with; any other pair is ErrNotFound. The run
// Artifacts gives is the context's run id, with its team's when the
// context has one (middleware.WithTeam).
// Implementations must be safe for concurrent use. MemoryStore, DirStore
// and the Redis store of adapters/redis implement it.
type Store interface {
	Put(ctx context.Context, run, id string, t *Text) error
	Get(ctx context.Context, run, id string) (*Text, error)
}

// IDPrefix starts every artifact id.
const IDPrefix = "art_"

// NewID returns a random artifact id: IDPrefix and 128 random bits in
// base32 (crypto/rand), unguessable.
func NewID() string { return IDPrefix + rand.Text() }

// ValidID reports whether id has the shape NewID produces, so that stores
// can refuse anything else before it reaches a key or a path.
func ValidID(id string) bool {
	if !strings.HasPrefix(id, IDPrefix) || len(id) != len(IDPrefix)+26 {
		return false
	}
	for _, c := range id[len(IDPrefix):] {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ArtifactConfig says when a result is offloaded and how the excerpt and
// the read_artifact tool are bounded. Every zero value is a documented
// default.
type ArtifactConfig struct {
	// ThresholdBytes offloads results larger than this. Zero: not used.
	ThresholdBytes int
	// ThresholdTokens offloads results with more estimated tokens. Zero:
	// not used. With both thresholds zero nothing is offloaded
	// automatically (Offload still works).
	ThresholdTokens int64
	// HeadLines and TailLines are kept in the excerpt. Zero: 20 and 5.
	HeadLines, TailLines int
	// MaxLineBytes cuts longer lines in excerpts and reads. Zero: 200.
	MaxLineBytes int
	// ExcerptBytes bounds the lines of an excerpt together. Zero: 1536.
	ExcerptBytes int
	// ReadLines is read_artifact's default limit and MaxReadLines its
	// ceiling. Zero: 50 and 200.
	ReadLines, MaxReadLines int
	// MaxReadBytes bounds one read_artifact answer. Zero: 16KiB. A line
	// that does not fit in it, even cut to MaxLineBytes, is cut to what
	// fits (at least one character), so a read always shows a line.
	MaxReadBytes int
	// MaxMatches bounds a grep. Zero: 50.
	MaxMatches int
}

func (c ArtifactConfig) withDefaults() ArtifactConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.HeadLines, 20)
	def(&c.TailLines, 5)
	def(&c.MaxLineBytes, 200)
	def(&c.ExcerptBytes, 1536)
	def(&c.ReadLines, 50)
	def(&c.MaxReadLines, 200)
	def(&c.MaxReadBytes, 16<<10)
	def(&c.MaxMatches, 50)
	return c
}

// TokenCounter estimates the tokens of a text.
type TokenCounter func(s string) int64

// DefaultTokenCounter counts with the tokens package (o200k_base, the
// encoding of gpt-4o and later). Texts over 8KiB are extrapolated from
// their first 2KiB, since exact tokenisation runs at a few MB/s: the
// estimate of a 2MB result is not worth a second of CPU.
func DefaultTokenCounter() TokenCounter {
	est := tokens.New()
	return func(s string) int64 {
		const exact, sample = 8 << 10, 2 << 10
		if len(s) <= exact {
			return est.Text("gpt-4o", s)
		}
		head := s[:sample]
		for !utf8.ValidString(head) && len(head) > sample-4 {
			head = head[:len(head)-1]
		}
		n := est.Text("gpt-4o", head)
		return (n*int64(len(s)) + int64(len(head)) - 1) / int64(len(head))
	}
}

// Artifacts offloads large tool results to a Store, renders the excerpt
// the conversation gets, and reads artifacts back for the read_artifact
// tool. Everything is scoped to the run of the context
// (middleware.RunFrom). A call outside any run is a scope of its own, shared
// with no other call: Put refuses to store (ErrNoRun: no later call could
// read the artifact back), the executor keeps an excerpt without an id,
// and Get finds nothing (ErrNotFound). Start a run to offload.
//
// Artifacts is safe for concurrent use.
type Artifacts struct {
	store Store
	cfg   ArtifactConfig
	count TokenCounter
}

// NewArtifacts returns artifacts kept in store. count nil means
// DefaultTokenCounter.
func NewArtifacts(store Store, cfg ArtifactConfig, count TokenCounter) *Artifacts {
	if count == nil {
		count = DefaultTokenCounter()
	}
	return &Artifacts{store: store, cfg: cfg.withDefaults(), count: count}
}

// Store returns the underlying store.
func (a *Artifacts) Store() Store { return a.store }

// runID returns the artifact scope of ctx: its run's id, and its team's
// (middleware.WithTeam) if it has one, so that the runs of two teams
// with the same id (a gateway's X-Run-Id is any text) do not share
// artifacts: the team quoted before the run id (a run id without a team
// that starts with a quote is quoted with the empty team, so no two
// scopes meet). ok is false outside a run, whose scope holds nothing.
func runID(ctx context.Context) (id string, ok bool) {
	r := middleware.RunFrom(ctx)
	if r == nil {
		return "", false
	}
	if team := middleware.TeamFrom(ctx); team != "" || strings.HasPrefix(r.ID(), `"`) {
		return strconv.Quote(team) + ":" + r.ID(), true
	}
	return r.ID(), true
}

// Exceeds reports whether s is over the configured thresholds.
func (a *Artifacts) Exceeds(s string) bool {
	if a.cfg.ThresholdBytes > 0 && len(s) > a.cfg.ThresholdBytes {
		return true
	}
	// A token is at least one byte: a text no longer than the threshold
	// cannot exceed it, and is not tokenised.
	if t := a.cfg.ThresholdTokens; t > 0 && int64(len(s)) > t {
		return a.count(s) > t
	}
	return false
}

// Put stores s in the run of ctx and returns its id and indexed text.
func (a *Artifacts) Put(ctx context.Context, s string) (string, *Text, error) {
	run, ok := runID(ctx)
	if !ok {
		return "", nil, ErrNoRun
	}
	t := NewText([]byte(s))
	id := NewID()
	if err := a.store.Put(ctx, run, id, t); err != nil {
		return "", nil, err
	}
	return id, t, nil
}

// Get returns the artifact id of the run of ctx, or ErrNotFound.
func (a *Artifacts) Get(ctx context.Context, id string) (*Text, error) {
	run, ok := runID(ctx)
	if !ok || !ValidID(id) {
		return nil, ErrNotFound
	}
	return a.store.Get(ctx, run, id)
}

// ReadRange returns up to limit lines of the artifact from line offset
// (0-based), and its number of lines.
func (a *Artifacts) ReadRange(ctx context.Context, id string, offset, limit int) ([]string, int, error) {
	t, err := a.Get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return t.Range(offset, limit), t.Lines(), nil
}

// Grep returns up to limit lines of the artifact matching the regular
// expression pattern (RE2: linear time).
func (a *Artifacts) Grep(ctx context.Context, id, pattern string, limit int) ([]Match, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	t, err := a.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return t.Grep(re, 0, limit), nil
}

// Offload stores s (whatever its size) and returns the excerpt that
// replaces it in the conversation, the artifact id and the estimated
// tokens kept out of the conversation. It records nothing and emits
// nothing; context compaction uses it to offload old tool results.
func (a *Artifacts) Offload(ctx context.Context, s string) (excerpt, id string, saved int64, err error) {
	id, t, err := a.Put(ctx, s)
	if err != nil {
		return "", "", 0, err
	}
	excerpt = a.Excerpt(id, t)
	saved = max(a.count(s)-a.count(excerpt), 0)
	return excerpt, id, saved, nil
}

// offload is the executor's step: results over the threshold become an
// excerpt; a store failure keeps the context safe (an excerpt without an
// id) and is emitted as middleware.StoreFailed.
func (a *Artifacts) offload(ctx context.Context, tool, s string) (string, string, int64) {
	if !a.Exceeds(s) {
		return s, "", 0
	}
	excerpt, id, saved, err := a.Offload(ctx, s)
	if errors.Is(err, ErrNoRun) {
		t := NewText([]byte(s))
		return a.excerpt("", t, "the full result is not kept: calls outside a run share no artifacts"), "", 0
	}
	if err != nil {
		middleware.Emit(ctx, middleware.StoreFailed{Store: "artifacts", Op: "put", Err: err})
		t := NewText([]byte(s))
		return a.excerpt("", t, fmt.Sprintf("the full result could not be stored (%v)", err)), "", 0
	}
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.ArtifactStored{ID: id, Tool: tool, Bytes: len(s), SavedTokens: saved})
	}
	return excerpt, id, saved
}

// Excerpt renders what the conversation gets for artifact id: a header
// with the size and how to read more, the head and tail lines (each cut
// to MaxLineBytes, together bounded by ExcerptBytes) and how many lines
// were left out.
func (a *Artifacts) Excerpt(id string, t *Text) string {
	return a.excerpt(id, t, "")
}

func (a *Artifacts) excerpt(id string, t *Text, note string) string {
	c := a.cfg
	n := t.Lines()
	head, tail := min(c.HeadLines, n), min(c.TailLines, max(n-c.HeadLines, 0))
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "[tool result stored as artifact %s: %d bytes, %d lines. Read it with %s: {\"id\":%q,\"offset\":0,\"limit\":50} or {\"id\":%q,\"grep\":\"regexp\"}]\n",
			id, t.Size(), n, ReadArtifactName, id, id)
	} else {
		fmt.Fprintf(&b, "[tool result of %d bytes, %d lines; %s]\n", t.Size(), n, note)
	}
	budget := c.ExcerptBytes
	write := func(i int) bool {
		line := clip(t.Line(i), c.MaxLineBytes)
		if len(line)+1 > budget {
			return false
		}
		budget -= len(line) + 1
		b.WriteString(line)
		b.WriteByte('\n')
		return true
	}
	shown := 0
	for i := 0; i < head && write(i); i++ {
		shown++
	}
	var tailLines []string
	for i := n - 1; i >= n-tail && i >= shown; i-- {
		line := clip(t.Line(i), c.MaxLineBytes)
		if len(line)+1 > budget {
			break
		}
		budget -= len(line) + 1
		tailLines = append(tailLines, line)
	}
	tailShown := len(tailLines)
	if omitted := n - shown - tailShown; omitted > 0 {
		fmt.Fprintf(&b, "... %d lines omitted (lines %d-%d) ...\n", omitted, shown, n-tailShown-1)
	}
	for i := len(tailLines) - 1; i >= 0; i-- {
		b.WriteString(tailLines[i])
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut;
// it keeps at least the first character of s, so that a line cut always
// shows something to read on from.
func clip(s string, n int) string {
	if len(s) <= max(n, 0) {
		return s
	}
	cut := runeStart(s, n)
	if cut == 0 {
		_, cut = utf8.DecodeRuneInString(s)
		if cut == len(s) {
			return s
		}
	}
	return s[:cut] + "…"
}
