package toolwrap

import (
	"bytes"
	"container/list"
	"encoding/json"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// resultCache is a small LRU with a TTL per entry, for idempotent tools'
// results, bounded in entries and in bytes. It owns no goroutine: expired
// entries are dropped when read or evicted. Safe for concurrent use.
type resultCache struct {
	ttl      time.Duration
	max      int
	maxBytes int64
	now      func() time.Time

	mu    sync.Mutex
	ll    *list.List
	idx   map[string]*list.Element
	bytes int64 // of the entries' keys and values
}

// defaultCacheBytes bounds a result cache's bytes by default.
const defaultCacheBytes = 64 << 20

type cacheEntry struct {
	key     string
	val     string
	expires time.Time
}

func newResultCache(ttl time.Duration, max int, maxBytes int64, now func() time.Time) *resultCache {
	if max <= 0 {
		max = 1024
	}
	if maxBytes <= 0 {
		maxBytes = defaultCacheBytes
	}
	return &resultCache{ttl: ttl, max: max, maxBytes: maxBytes, now: now, ll: list.New(), idx: map[string]*list.Element{}}
}

func (e *cacheEntry) size() int64 { return int64(len(e.key) + len(e.val)) }

// remove drops el. c.mu is held.
func (c *resultCache) remove(el *list.Element) {
	ent := el.Value.(*cacheEntry)
	c.ll.Remove(el)
	delete(c.idx, ent.key)
	c.bytes -= ent.size()
}

func (c *resultCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.idx[key]
	if !ok {
		return "", false
	}
	ent := el.Value.(*cacheEntry)
	if !c.now().Before(ent.expires) {
		c.remove(el)
		return "", false
	}
	c.ll.MoveToFront(el)
	return ent.val, true
}

func (c *resultCache) put(key, val string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[key]; ok {
		c.remove(el)
	}
	ent := &cacheEntry{key: key, val: val, expires: c.now().Add(c.ttl)}
	if ent.size() > c.maxBytes {
		return // larger than the cache
	}
	c.idx[key] = c.ll.PushFront(ent)
	c.bytes += ent.size()
	for c.ll.Len() > c.max || c.bytes > c.maxBytes {
		c.remove(c.ll.Back())
	}
}

// cacheKey keys a call on the tool name and the canonical form of its
// arguments: JSON re-encoded with sorted object keys and no insignificant
// space, numbers kept as written; arguments that are not JSON are used as
// they are.
func cacheKey(name, args string) string {
	return name + "\x00" + CanonicalArgs(args)
}

// CanonicalArgs returns the canonical form of a tool call's JSON arguments
// (sorted keys, compact, numbers as written), or args unchanged when they
// are not valid JSON, or when decoding would lose what tells them apart
// from others: bytes that are not UTF-8 and escaped UTF-16 surrogates
// both decode to U+FFFD, so {"q":"\xff"} and {"q":"\xfe"} would share a key
// (and one call's cached result).
func CanonicalArgs(args string) string {
	if !utf8.ValidString(args) || hasSurrogateEscape(args) {
		return args
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(args)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return args
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		return args
	}
	return string(b)
}

// hasSurrogateEscape reports whether s has a \uD800–\uDFFF escape (in
// either case), which JSON decoding may replace with U+FFFD.
func hasSurrogateEscape(s string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], `\u`)
		if j < 0 {
			return false
		}
		i += j + 2
		if i+2 <= len(s) && (s[i] == 'd' || s[i] == 'D') && strings.ContainsRune("89abcdefABCDEF", rune(s[i+1])) {
			return true
		}
	}
}
