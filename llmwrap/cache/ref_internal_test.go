package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
)

// spansWire is a native request whose key is made of spans of its body,
// as the OpenAI adapter's Wire is.
type spansWire struct {
	body  []byte
	spans []uint32
	whole bool
}

func (w *spansWire) AppendCacheKey(dst []byte, _ *middleware.Request) ([]byte, bool) {
	for i := 0; i < len(w.spans); i += 2 {
		b := w.body[w.spans[i]:w.spans[i+1]]
		dst = append(binary.AppendUvarint(dst, uint64(len(b))), b...)
	}
	return dst, w.whole
}

func (w *spansWire) CacheKeySpans(dst []uint32, _ *middleware.Request) ([]byte, []uint32, bool) {
	return w.body, append(dst, w.spans...), w.whole
}

// TestCanonRefIsTheCanonicalRequest: for random bodies and spans (few and
// many, empty and long), the reference a miss keeps expands to exactly the
// canonical request, equals it, and equals no request that differs from it
// by one byte, one byte more or one byte less; an entry keeping it
// round-trips through its binary form with the same canonical bytes.
func TestCanonRefIsTheCanonicalRequest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		body := make([]byte, r.IntN(600))
		for i := range body {
			body[i] = byte(r.IntN(256))
		}
		w := &spansWire{body: body, whole: true}
		for range r.IntN(60) {
			s := r.IntN(len(body) + 1)
			e := s + r.IntN(len(body)-s+1)
			w.spans = append(w.spans, uint32(s), uint32(e))
		}
		req := &middleware.Request{Model: "m", Native: w}
		canon := AppendCanonical(nil, "team:x", req)
		ref := newCanonRef(canon, req)
		if ref == nil {
			t.Fatalf("no reference for %d spans", len(w.spans)/2)
		}
		if got := ref.appendTo(nil); !bytes.Equal(got, canon) {
			t.Fatalf("reference expands to %x, want %x", got, canon)
		}
		if !ref.equal(canon) || ref.equal(canon[:len(canon)-1]) || ref.equal(append(bytes.Clone(canon), 0)) {
			t.Fatal("reference equality is wrong at the ends")
		}
		mut := bytes.Clone(canon)
		i := r.IntN(len(mut))
		mut[i] ^= byte(1 + r.IntN(255))
		if ref.equal(mut) {
			t.Fatalf("reference equals the request changed at byte %d", i)
		}
		e := &Entry{ref: ref, Response: middleware.Response{ID: "x"}}
		bin, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Entry
		if err := back.UnmarshalBinary(bin); err != nil || !bytes.Equal(back.Request, canon) || !back.matches(canon) {
			t.Fatalf("binary round trip: %v", err)
		}
		if p := pack(e); p.size() < int64(len(body)) {
			t.Fatalf("entry of a %d-byte body counts %d bytes", len(body), p.size())
		}
		w.whole = false
		if newCanonRef(AppendCanonical(nil, "team:x", req), req) != nil {
			t.Fatal("a reference for a request that is not whole")
		}
	}
}

// TestMissKeepsTheBodyNotACopy: through the cache layer on a Memory store,
// a miss of a request whose native key is spans of its body stores an
// entry that refers to the body; the same request is then a hit, and one
// whose body differs by a byte a miss.
func TestMissKeepsTheBodyNotACopy(t *testing.T) {
	store, h, calls := memoryCache(t)
	mk := func(body string) *middleware.Request {
		return &middleware.Request{Model: "m", Native: &spansWire{body: []byte(body), spans: []uint32{0, 3, 4, uint32(len(body))}, whole: true}}
	}
	ctx := context.Background()
	for i, step := range []struct {
		body string
		hit  bool
	}{{"abc-defgh", false}, {"abc-defgh", true}, {"abc+defgh", true}, {"abc-defgX", false}, {"abc-defgX", true}} {
		resp, err := h.Handle(ctx, mk(step.body))
		if err != nil || resp.FromCache != step.hit {
			t.Fatalf("step %d (%s): FromCache %v, err %v; want hit %v", i, step.body, resp.FromCache, err, step.hit)
		}
	}
	if *calls != 2 {
		t.Fatalf("%d provider calls, want 2", *calls)
	}
	canon := AppendCanonical(nil, ScopeTeamPrefix, mk("abc-defgh"))
	e, _ := store.Get(ctx, Sum(canon))
	if e == nil || e.ref == nil || e.Request != nil || !bytes.Equal(e.Canonical(), canon) {
		t.Fatalf("stored entry %+v does not refer to the body", e)
	}
}

// memoryCache returns a cache layer on a new Memory store, around a
// provider that answers "ok" and counts its calls.
func memoryCache(t *testing.T) (*Memory, middleware.Handler, *int) {
	t.Helper()
	store := NewMemory(MemoryOptions{})
	c, err := New(Config{}, WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	calls := new(int)
	h := c.Middleware()(middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		*calls++
		return &middleware.Response{Model: req.Model, FinishReason: "stop", Message: middleware.Message{Role: "assistant", Content: "ok"}}, nil
	}))
	return store, h, calls
}
