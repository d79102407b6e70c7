package toolwrap

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"weak"

	"github.com/tokenwise/tokenwise/middleware"
)

// MemoryStore keeps artifacts in process, bounded by the memory they hold
// (their bytes and their line index, a word a line). It is shared by the
// runs it serves, and never evicts an artifact of a run in progress (the
// run of the context it was put with, middleware.RunFrom, while that
// *middleware.Run is alive): its excerpt is in that run's conversation. A
// put evicts the least recently used artifacts of ended runs, and those
// put outside a run, until it fits; if it cannot fit beside the artifacts
// of runs in progress it is refused with ErrStoreFull, evicting nothing
// (the executor cuts the result to an excerpt that names no artifact). One
// larger than the bound is refused with ErrTooLarge. A run ends for the
// store when its *middleware.Run is garbage collected. Content is held,
// not copied (a Text is immutable). The zero value is not usable; call
// NewMemoryStore. A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	max     int64
	noEvict bool // full: Put refuses (ErrStoreFull) instead of evicting

	mu   sync.Mutex
	size int64
	ll   *list.List
	idx  map[memKey]*list.Element
	// gone remembers the keys of the last evicted artifacts (a ring of
	// goneKeys), so that a read of one says it was evicted (ErrEvicted)
	// rather than that it never was.
	gone    map[memKey]struct{}
	goneAt  []memKey
	goneOld int
}

// goneKeys is how many evicted keys a MemoryStore remembers.
const goneKeys = 4096

type memKey struct{ run, id string }

type memEntry struct {
	key memKey
	t   *Text
	// owner is the run the artifact was put in (the zero Pointer: put
	// outside a run); while it is alive the artifact is not evicted.
	owner weak.Pointer[middleware.Run]
}

// kept reports whether e belongs to a run in progress.
func (e *memEntry) kept() bool {
	return e.owner != (weak.Pointer[middleware.Run]{}) && e.owner.Value() != nil
}

// ownerOf returns the owner of an artifact put or read in ctx under run
// (an artifact scope, see runID): the context's run, when it is the run
// named.
func ownerOf(ctx context.Context, run string) weak.Pointer[middleware.Run] {
	if scope, ok := runID(ctx); ok && scope == run {
		return weak.Make(middleware.RunFrom(ctx))
	}
	return weak.Pointer[middleware.Run]{}
}

// NewMemoryStore returns a store of at most maxBytes. Zero or less: 64MiB.
func NewMemoryStore(maxBytes int64) *MemoryStore {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	return &MemoryStore{max: maxBytes, ll: list.New(), idx: map[memKey]*list.Element{}}
}

// newKeepingMemoryStore returns a store of at most maxBytes that evicts
// nothing: once full, Put refuses with ErrStoreFull (a run's store, whose
// artifacts the conversation names for the run's life).
func newKeepingMemoryStore(maxBytes int64) *MemoryStore {
	s := NewMemoryStore(maxBytes)
	s.noEvict = true
	return s
}

// Put stores t under run and id. The artifact is kept while the run of ctx
// (when it is the run named) is in progress.
func (s *MemoryStore) Put(ctx context.Context, run, id string, t *Text) error {
	n := t.memSize()
	if n > s.max {
		return fmt.Errorf("%w: %d bytes, store holds %d", ErrTooLarge, n, s.max)
	}
	k := memKey{run, id}
	var owner weak.Pointer[middleware.Run]
	if !s.noEvict {
		owner = ownerOf(ctx, run)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// held is what stays whatever is evicted: the artifacts of runs in
	// progress (all of them in a store that evicts nothing), but the one
	// replaced.
	held := s.size
	if el, ok := s.idx[k]; ok {
		held -= el.Value.(*memEntry).t.memSize()
	}
	if held+n > s.max && !s.noEvict {
		held = 0
		for el := s.ll.Front(); el != nil; el = el.Next() {
			if e := el.Value.(*memEntry); e.key != k && e.kept() {
				held += e.t.memSize()
			}
		}
	}
	if held+n > s.max {
		return fmt.Errorf("%w: %d bytes held for runs in progress of %d, %d more asked", ErrStoreFull, held, s.max, n)
	}
	if el, ok := s.idx[k]; ok {
		s.size -= el.Value.(*memEntry).t.memSize()
		s.ll.Remove(el)
	}
	for el := s.ll.Back(); s.size+n > s.max; {
		e := el.Value.(*memEntry)
		prev := el.Prev()
		if !e.kept() {
			s.ll.Remove(el)
			delete(s.idx, e.key)
			s.size -= e.t.memSize()
			s.forget(e.key)
		}
		el = prev
	}
	s.idx[k] = s.ll.PushFront(&memEntry{key: k, t: t, owner: owner})
	s.size += n
	return nil
}

// forget records that k was evicted, forgetting the oldest such key past
// goneKeys. s.mu is held.
func (s *MemoryStore) forget(k memKey) {
	if s.gone == nil {
		s.gone = make(map[memKey]struct{})
	}
	if len(s.goneAt) < goneKeys {
		s.goneAt = append(s.goneAt, k)
	} else {
		delete(s.gone, s.goneAt[s.goneOld])
		s.goneAt[s.goneOld] = k
		s.goneOld = (s.goneOld + 1) % goneKeys
	}
	s.gone[k] = struct{}{}
}

// Get returns the artifact of run and id, or ErrNotFound (ErrEvicted when
// the store evicted it). An artifact whose run has ended, read in a run of
// the same id in progress (a run resumed under a new *middleware.Run), is
// kept for that run from then on.
func (s *MemoryStore) Get(ctx context.Context, run, id string) (*Text, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.idx[memKey{run, id}]
	if !ok {
		if _, evicted := s.gone[memKey{run, id}]; evicted {
			return nil, ErrEvicted
		}
		return nil, ErrNotFound
	}
	s.ll.MoveToFront(el)
	e := el.Value.(*memEntry)
	if !s.noEvict && !e.kept() {
		e.owner = ownerOf(ctx, run)
	}
	return e.t, nil
}

// Size returns the memory held: the artifacts' bytes and line indexes.
func (s *MemoryStore) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// DirStore keeps artifacts as files in a directory: <dir>/<run hash>/<id>.
// The run's directory name is a hash of the run id, and ids are checked
// with ValidID, so no input reaches the file system as a path. Nothing is
// evicted: clean the directory with your own retention. A DirStore is safe
// for concurrent use.
type DirStore struct {
	dir string
}

// NewDirStore returns a store in dir, creating it if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, errors.New("tokenwise/toolwrap: DirStore needs a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &DirStore{dir: dir}, nil
}

func (s *DirStore) path(run, id string) string {
	h := sha256.Sum256([]byte(run))
	return filepath.Join(s.dir, hex.EncodeToString(h[:16]), id)
}

// Put writes t to a file, atomically (temporary file and rename).
func (s *DirStore) Put(_ context.Context, run, id string, t *Text) error {
	if !ValidID(id) {
		return fmt.Errorf("tokenwise/toolwrap: invalid artifact id %q", id)
	}
	p := s.path(run, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(t.Bytes()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), p)
}

// Get reads the artifact of run and id, or ErrNotFound.
func (s *DirStore) Get(_ context.Context, run, id string) (*Text, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(s.path(run, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return NewText(b), nil
}
