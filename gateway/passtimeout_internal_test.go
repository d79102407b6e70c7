package gateway

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
)

// pacedBody gives a byte per read after the wait of its turn (waits[i]
// before the i-th read's byte), then io.EOF; a wait ends early, with the
// context's cause, when ctx ends (as a transport's body read does).
type pacedBody struct {
	ctx   context.Context
	waits []time.Duration
}

func (p *pacedBody) Read(b []byte) (int, error) {
	if len(p.waits) == 0 {
		return 0, io.EOF
	}
	select {
	case <-time.After(p.waits[0]):
	case <-p.ctx.Done():
		return 0, context.Cause(p.ctx)
	}
	p.waits = p.waits[1:]
	b[0] = 'x'
	return 1, nil
}

func (*pacedBody) Close() error { return nil }

// TestWatchedBodyCountsTheUpstreamsTimeOnly: the idle clock of a stream
// runs while the gateway waits for the upstream, not while the client
// takes its time to read what it was given (a slow consumer is not a
// stalled provider, as in the chain's timeout layer): reads a second
// apart from a client that pauses 5 s between them pass an idle limit of
// 2 s; a wait of 3 s for the upstream ends the stream with the idle
// limit's error; the first-token clock runs from the send until the
// first bytes, whatever the reads.
func TestWatchedBodyCountsTheUpstreamsTimeOnly(t *testing.T) {
	// bound returns the clocks of a stream's call and its attempt's
	// context.
	bound := func(first, idle time.Duration) (*passBound, context.Context) {
		b := &passBound{idle: idle, idleCause: &middleware.DeadlineError{Cause: timeout.ErrIdle, Limit: idle}}
		b.ctx, b.cancel = context.WithCancelCause(context.Background())
		if first > 0 {
			b.firstLim, b.first = first, &middleware.DeadlineError{Cause: timeout.ErrFirstToken, Limit: first}
		}
		return b, b.begin(b.ctx, false, "")
	}
	read := func(w *watchedBody, pause time.Duration) (int, error) {
		var n int
		p := make([]byte, 1)
		for {
			k, err := w.Read(p)
			n += k
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				return n, err
			}
			time.Sleep(pause)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		b, ctx := bound(5*time.Second, 2*time.Second)
		defer b.stop()
		w := &watchedBody{src: &pacedBody{ctx: ctx, waits: []time.Duration{4 * time.Second, time.Second, time.Second, time.Second}}, b: b}
		if n, err := read(w, 5*time.Second); n != 4 || err != nil {
			t.Errorf("a slow client, a steady upstream: %d bytes, %v; want 4, no error", n, err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		b, ctx := bound(5*time.Second, 2*time.Second)
		defer b.stop()
		w := &watchedBody{src: &pacedBody{ctx: ctx, waits: []time.Duration{time.Second, 3 * time.Second, time.Second}}, b: b}
		start := time.Now()
		n, err := read(w, 0)
		if n != 1 || !errors.Is(err, timeout.ErrIdle) || time.Since(start) != 3*time.Second {
			t.Errorf("an upstream quiet for 3s: %d bytes, %v after %v; want 1, the idle limit after 3s", n, err, time.Since(start))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		b, ctx := bound(5*time.Second, 2*time.Second)
		defer b.stop()
		time.Sleep(4 * time.Second) // the answer's headers took 4 s
		w := &watchedBody{src: &pacedBody{ctx: ctx, waits: []time.Duration{2 * time.Second}}, b: b}
		n, err := read(w, 0)
		if n != 0 || !errors.Is(err, timeout.ErrFirstToken) {
			t.Errorf("first bytes 6s after the send: %d bytes, %v; want the first-token limit", n, err)
		}
	})
}

// TestEventScanCountsEventsWithData: a stream's clocks (first_token,
// idle) are reset by an event with a data payload only — not by comments
// (": keepalive"), blank lines, events of other fields alone or data
// fields without a value — whatever the line endings (LF, CRLF, CR) and
// however the bytes are cut into reads.
func TestEventScanCountsEventsWithData(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"data: x\n\n", 1},
		{"data:x\n\n", 1},
		{": keepalive\n\n", 0},
		{":\n\n\n\n", 0},
		{"\n\n\n", 0},
		{"event: ping\n\n", 0},
		{"id: 1\nretry: 10\n\n", 0},
		{"data:\n\n", 0},
		{"data: \n\n", 0},
		{"data\n\n", 0},
		{"datax: y\n\n", 0},
		{"dat: y\n\n", 0},
		{"data: x\n", 0}, // not ended
		{"data: x\r\n\r\n", 1},
		{"data: x\r\n\n", 1},
		{"data: x\r\rdata: y\r\r", 2},
		{"data: x\r\ndata: y\r\n\r\n", 1},
		{"event: response.created\ndata: {}\nid: 1\n\n: keepalive\n\ndata: z\n\n", 2},
		{": data: x\n\n", 0},
		{"event: data\n\n", 0},
	} {
		// Whole, and a byte per read.
		var s eventScan
		if got := s.events([]byte(c.in)); got != (c.want > 0) {
			t.Errorf("%q at once: an event ended %v, want %v", c.in, got, c.want > 0)
		}
		s = eventScan{}
		n := 0
		for i := range len(c.in) {
			if s.events([]byte{c.in[i]}) {
				n++
			}
		}
		if n != c.want {
			t.Errorf("%q a byte at a time: %d events, want %d", c.in, n, c.want)
		}
	}
}
