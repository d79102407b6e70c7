package gateway

import (
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// TestPipeWriterDeadlineMovedWhileAWriteWaits: a write deadline moved
// later while a write waits on the caller holds the write until the new
// deadline, not the old one: a caller that reads before the new deadline
// gets its bytes; one that does not read by then has the body cut with
// os.ErrDeadlineExceeded; a deadline cleared (zero) while a write waits
// cuts nothing; a deadline already past fails the next write at once.
func TestPipeWriterDeadlineMovedWhileAWriteWaits(t *testing.T) {
	newWriter := func() (*pipeWriter, *io.PipeReader) {
		pr, pw := io.Pipe()
		w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{}), length: -1}
		w.WriteHeader(http.StatusOK)
		return w, pr
	}
	for _, tc := range []struct {
		name     string
		move     time.Duration // the new deadline, from the start (0: cleared)
		readAt   time.Duration
		wantRead bool
	}{
		{"moved later, read before it", 10 * time.Second, 5 * time.Second, true},
		{"moved later, not read by it", 10 * time.Second, 20 * time.Second, false},
		{"cleared", 0, 60 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w, pr := newWriter()
				start := time.Now()
				_ = w.SetWriteDeadline(start.Add(time.Second))
				done := make(chan error, 1)
				go func() {
					_, err := w.Write([]byte("data"))
					done <- err
				}()
				time.Sleep(500 * time.Millisecond)
				synctest.Wait()
				if tc.move == 0 {
					_ = w.SetWriteDeadline(time.Time{})
				} else {
					_ = w.SetWriteDeadline(start.Add(tc.move))
				}
				time.Sleep(tc.readAt - 500*time.Millisecond)
				buf := make([]byte, 4)
				n, rerr := io.ReadFull(pr, buf)
				werr := <-done
				if tc.wantRead {
					if n != 4 || rerr != nil || werr != nil {
						t.Errorf("read %d %v, write %v: want the bytes", n, rerr, werr)
					}
				} else if !errors.Is(werr, os.ErrDeadlineExceeded) || !errors.Is(rerr, os.ErrDeadlineExceeded) {
					t.Errorf("read %d %v, write %v: want both cut at the deadline", n, rerr, werr)
				}
				w.finish()
				_ = pr.Close()
			})
		})
	}
	t.Run("past", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w, pr := newWriter()
			_ = w.SetWriteDeadline(time.Now().Add(-time.Second))
			synctest.Wait()
			if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a write after a past deadline: %v, want os.ErrDeadlineExceeded", err)
			}
			w.finish()
			_ = pr.Close()
		})
	})
}
