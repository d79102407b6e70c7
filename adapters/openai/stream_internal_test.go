package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// chainTransport returns a Transport whose chain is h alone (it never
// calls the provider).
func chainTransport(h middleware.HandlerFunc) *Transport {
	return NewTransport(func(middleware.Handler) middleware.Handler { return h })
}

// roundTripStream sends a streaming chat request through t.
func roundTripStream(t *testing.T, ctx context.Context, tr *Transport) *http.Response {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://upstream.invalid/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// randomReader reads with buffers of random sizes.
type randomReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (rr randomReader) Read(p []byte) (int, error) {
	return rr.r.Read(p[:1+rr.rnd.IntN(min(len(p), 600))])
}

// TestStreamBodyDeliversEveryChunkThenTheChainsEnd: whatever the chunks
// and the sizes of the caller's reads, the body carries every chunk the
// chain streamed, in order, then "[DONE]" and io.EOF when the chain
// succeeded, or the chain's error (never io.EOF, no "[DONE]") when it
// failed after its first chunk.
func TestStreamBodyDeliversEveryChunkThenTheChainsEnd(t *testing.T) {
	cut := errors.New("upstream cut")
	for seed := range uint64(60) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		var pieces []string
		alphabet := []rune("aé\"\\\n€x😀 ")
		for range 1 + rnd.IntN(40) {
			b := make([]rune, rnd.IntN(300))
			for i := range b {
				b[i] = alphabet[rnd.IntN(len(alphabet))]
			}
			pieces = append(pieces, string(b)+"·") // never empty
		}
		fail := seed%3 == 1
		tr := chainTransport(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			var acc middleware.Accumulator
			for _, p := range pieces {
				c := middleware.Chunk{Content: p}
				acc.Add(c)
				if err := req.Stream(ctx, c); err != nil {
					return nil, err
				}
			}
			if fail {
				return acc.Response(), cut
			}
			return acc.Response(), nil
		})
		resp := roundTripStream(t, context.Background(), tr)
		sc := bufio.NewScanner(randomReader{resp.Body, rnd})
		sc.Buffer(nil, 1<<20)
		var got strings.Builder
		done := false
		for sc.Scan() {
			payload, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if done {
				t.Fatalf("seed %d: event after [DONE]: %q", seed, payload)
			}
			if payload == "[DONE]" {
				done = true
				continue
			}
			var ch struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(payload), &ch); err != nil || len(ch.Choices) != 1 {
				t.Fatalf("seed %d: event %q: %v", seed, payload, err)
			}
			got.WriteString(ch.Choices[0].Delta.Content)
		}
		err := sc.Err()
		resp.Body.Close()
		if want := strings.Join(pieces, ""); got.String() != want {
			t.Fatalf("seed %d: streamed %q, want %q", seed, got.String(), want)
		}
		if fail {
			if done || !errors.Is(err, cut) {
				t.Fatalf("seed %d: failed chain: [DONE] %v, read error %v", seed, done, err)
			}
		} else if !done || err != nil {
			t.Fatalf("seed %d: [DONE] %v, read error %v", seed, done, err)
		}
	}
}

// waitingChain streams a first chunk, then a second, and records how its
// stream function and the chain ended.
type waitingChain struct {
	sendErr error
	ended   bool
}

func (w *waitingChain) handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	defer func() { w.ended = true }()
	for _, s := range []string{"one", "two"} {
		if err := req.Stream(ctx, middleware.Chunk{Content: s}); err != nil {
			w.sendErr = err
			return nil, err
		}
	}
	return &middleware.Response{}, nil
}

// TestStreamBodyCloseStopsTheChain: closing the body of a stream the
// caller stopped reading makes the chunk waiting in the stream function
// return the close (a cancelled context) and returns once the chain has
// returned; reads after the close fail.
func TestStreamBodyCloseStopsTheChain(t *testing.T) {
	w := &waitingChain{}
	resp := roundTripStream(t, context.Background(), chainTransport(w.handle))
	b := make([]byte, 4<<10)
	n, err := resp.Body.Read(b)
	if err != nil || !bytes.Contains(b[:n], []byte(`"one"`)) {
		t.Fatalf("first read %q, %v", b[:n], err)
	}
	resp.Body.Close()
	if !w.ended || !errors.Is(w.sendErr, context.Canceled) || !errors.Is(w.sendErr, errBodyClosed) {
		t.Fatalf("after Close: chain ended %v, stream function returned %v", w.ended, w.sendErr)
	}
	if _, err := resp.Body.Read(b); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// TestStreamBodyDoneContextStopsAChainNobodyReads: when the request's
// context is done while the caller neither reads nor closes, the chain is
// stopped all the same (nothing waits for a caller who is gone), and a
// later read returns what was handed over, then the context's error.
func TestStreamBodyDoneContextStopsAChainNobodyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		w := &waitingChain{}
		resp := roundTripStream(t, ctx, chainTransport(w.handle))
		cancel()
		synctest.Wait()
		if !w.ended || !errors.Is(w.sendErr, context.Canceled) {
			t.Fatalf("chain ended %v, stream function returned %v", w.ended, w.sendErr)
		}
		got, err := io.ReadAll(resp.Body)
		if !bytes.Contains(got, []byte(`"one"`)) || bytes.Contains(got, []byte(`"two"`)) || !errors.Is(err, context.Canceled) {
			t.Fatalf("read %q, %v", got, err)
		}
		resp.Body.Close()
	})
}

// TestStreamBodyCloseReleasesAWaitingRead: a read waiting for the chain's
// next chunk (the upstream is silent) returns an error as soon as another
// goroutine closes the body, and Close returns.
func TestStreamBodyCloseReleasesAWaitingRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := chainTransport(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if err := req.Stream(ctx, middleware.Chunk{Content: "one"}); err != nil {
				return nil, err
			}
			<-ctx.Done() // a silent upstream
			return nil, ctxError(ctx)
		})
		resp := roundTripStream(t, context.Background(), tr)
		errc := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(resp.Body)
			errc <- err
		}()
		synctest.Wait()
		if len(errc) != 0 {
			t.Fatal("read returned before the close")
		}
		resp.Body.Close()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting read returned %v", err)
		}
	})
}

// deadlineChain is a waitingChain whose chunks carry a context of their
// own, as a timeout layer's are: it ends with cause at the deadline, and
// is cancelled when the chain returns.
type deadlineChain struct {
	waitingChain
	after    time.Duration
	cause    error
	returned atomic.Bool // the chain returned (ended, to read before it has)
}

func (d *deadlineChain) handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	defer d.returned.Store(true)
	ctx, cancel := context.WithTimeoutCause(ctx, d.after, d.cause)
	defer cancel()
	return d.waitingChain.handle(ctx, req)
}

// TestStreamBodyChunkDeadlineStopsAChainNobodyReads: when the context of
// the chunk the caller holds ends (the chain's call deadline) while the
// caller neither reads nor closes, the chain is stopped then, not when the
// caller comes back: the stream function returns the deadline's error, and
// a later read returns what was handed over, then that error.
func TestStreamBodyChunkDeadlineStopsAChainNobodyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("call deadline")
		d := &deadlineChain{after: 500 * time.Millisecond, cause: cause}
		resp := roundTripStream(t, context.Background(), chainTransport(d.handle))
		defer resp.Body.Close()
		time.Sleep(400 * time.Millisecond)
		synctest.Wait()
		if d.returned.Load() {
			t.Fatal("the chain stopped before its deadline")
		}
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if !d.ended || !errors.Is(d.sendErr, context.DeadlineExceeded) || !errors.Is(d.sendErr, cause) {
			t.Fatalf("at the deadline: chain ended %v, stream function returned %v", d.ended, d.sendErr)
		}
		got, err := io.ReadAll(resp.Body)
		if !bytes.Contains(got, []byte(`"one"`)) || bytes.Contains(got, []byte(`"two"`)) || !errors.Is(err, cause) {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}

// TestStreamBodyChunkContextEndingWithTheChain: the chunks' context is
// cancelled as the chain returns (a timeout layer releases its deadline);
// that stops nothing: a slow reader gets every chunk, "[DONE]" and io.EOF.
func TestStreamBodyChunkContextEndingWithTheChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &deadlineChain{after: time.Hour, cause: errors.New("never")}
		resp := roundTripStream(t, context.Background(), chainTransport(d.handle))
		defer resp.Body.Close()
		var got []byte
		b := make([]byte, 7)
		for {
			n, err := resp.Body.Read(b)
			got = append(got, b[:n]...)
			synctest.Wait() // a stop the context's end would make, made
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read error %v after %q", err, got)
			}
		}
		if !bytes.Contains(got, []byte(`"one"`)) || !bytes.Contains(got, []byte(`"two"`)) || !bytes.HasSuffix(got, sseDone) || d.sendErr != nil {
			t.Fatalf("read %q; stream function returned %v", got, d.sendErr)
		}
	})
}
