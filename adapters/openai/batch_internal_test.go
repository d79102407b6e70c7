package openai

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/middleware"
)

// bodyTransport answers every request with a 200 event stream whose body
// newBody makes.
type bodyTransport func() io.Reader

func (f bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(f()), Request: r}, nil
}

// countingRead reads r to the end with a large buffer, so that each Read
// returns what the transport handed over at once, and returns the bytes,
// the number of Reads that returned bytes, and the final error (nil at
// io.EOF).
func countingRead(r io.Reader) ([]byte, int, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	reads := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			reads++
			out = append(out, buf[:n]...)
		}
		if err == io.EOF {
			return out, reads, nil
		}
		if err != nil {
			return out, reads, err
		}
	}
}

// upstreamStream returns the event stream openaitest's server sends for a
// random reply of seed (a random shape for odd seeds), asked with usage.
func upstreamStream(t *testing.T, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	rep := openaitest.RandomReply(rng, true)
	rep.ChunkSize = 1 + rng.IntN(6)
	if seed%2 == 1 {
		rep.Shape = &openaitest.Shape{Seed: seed}
	}
	srv := openaitest.New()
	srv.Default(rep)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)))
	if rec.Code != 200 {
		t.Fatalf("seed %d: openaitest answered %d: %s", seed, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// TestStreamBatchesOnlyBufferedChunks: the events a caller reads through
// the transport are byte for byte the same whether the upstream's bytes
// arrive all at once (the provider finds the next event already read and
// the writer hands several chunks over in one Read) or one byte at a time
// (never a complete next event: one Read per chunk), for random replies and
// shapes, with and without usage asked, and for streams cut before they
// finished (the same events, then the same error). Batches are bounded by
// batchBytes.
func TestStreamBatchesOnlyBufferedChunks(t *testing.T) {
	for seed := range uint64(80) {
		up := upstreamStream(t, seed)
		cut := seed%4 == 3
		if cut {
			// Cut before the first event with a finish reason: a stream
			// closed after it (without [DONE]) has finished.
			i := bytes.Index(up, []byte(`"finish_reason":"`))
			up = up[:bytes.LastIndex(up[:i], []byte("data:"))]
		}
		for _, usage := range []bool{false, true} {
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if usage {
				body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
			}
			run := func(newBody func() io.Reader) ([]byte, int, error) {
				tr := NewTransport(nil, WithBaseTransport(bodyTransport(newBody)))
				r, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", strings.NewReader(body))
				resp, err := tr.RoundTrip(r)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				defer resp.Body.Close()
				return countingRead(resp.Body)
			}
			whole, wholeReads, wholeErr := run(func() io.Reader { return bytes.NewReader(up) })
			single, singleReads, singleErr := run(func() io.Reader { return iotest.OneByteReader(bytes.NewReader(up)) })
			if !bytes.Equal(whole, single) {
				t.Fatalf("seed %d usage %v: batched\n%s\none by one\n%s", seed, usage, whole, single)
			}
			if cut != (wholeErr != nil) || !errors.Is(wholeErr, middleware.ErrStreamCut) != !errors.Is(singleErr, middleware.ErrStreamCut) ||
				(wholeErr == nil) != (singleErr == nil) {
				t.Fatalf("seed %d usage %v: batched read ended with %v, one by one with %v", seed, usage, wholeErr, singleErr)
			}
			events := bytes.Count(single, []byte("\n\ndata: ")) + 1
			if singleReads != events {
				t.Fatalf("seed %d usage %v: %d reads for %d events when nothing is buffered", seed, usage, singleReads, events)
			}
			// OpenAI's own order (even seeds) batches up to batchBytes,
			// and hands over where the provider's 8 KB buffer ends in the
			// middle of an event (its end is not read yet); a random shape
			// holds lines that are no data line (comments, event names),
			// before which a batch is handed over too.
			if wantMax := len(whole)/batchBytes + len(up)/(8<<10) + 3; wholeReads > singleReads || seed%2 == 0 && wholeReads > wantMax {
				t.Fatalf("seed %d usage %v: %d reads of %d bytes, %d events: not batched", seed, usage, wholeReads, len(whole), events)
			}
		}
	}
}

// TestStreamBatchNeverWaitsForTheNetwork: a chunk whose next event has not
// arrived is handed to the caller at once. The upstream sends each event
// only after the caller has read the one before; a chunk held back for a
// batch would leave both waiting for ever (a deadlock synctest reports).
func TestStreamBatchNeverWaitsForTheNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := upstreamStream(t, 4)
		events := bytes.SplitAfter(up, []byte("\n\n"))
		pr, pw := io.Pipe()
		read := make(chan struct{})
		go func() {
			for _, e := range events {
				if len(e) == 0 {
					continue
				}
				if _, err := pw.Write(e); err != nil {
					return
				}
				if len(bytes.TrimSpace(e)) > 0 && !bytes.Contains(e, []byte(`"choices":[]`)) && !bytes.Contains(e, []byte("[DONE]")) {
					<-read // the caller has read this event (a usage-only chunk it did not ask for never reaches it)
				}
			}
			pw.Close()
		}()
		tr := NewTransport(nil, WithBaseTransport(bodyTransport(func() io.Reader { return pr })))
		r, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://upstream.invalid/v1/chat/completions",
			strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		n := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("after %d events: %v", n, err)
			}
			if line == "data: [DONE]\n" {
				break
			}
			if strings.HasPrefix(line, "data: ") {
				n++
				read <- struct{}{}
			}
		}
		if n == 0 {
			t.Fatal("no event")
		}
	})
}
