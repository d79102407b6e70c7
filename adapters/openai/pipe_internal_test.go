package openai

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/synctest"
)

// TestPipeDeliversEveryByteThenTheWritersError: whatever the sizes of the
// writes and of the reads, and however they interleave, the reader gets
// every byte written, in order, then the error the writer closed with
// (io.EOF for none); a write after the close fails.
func TestPipeDeliversEveryByteThenTheWritersError(t *testing.T) {
	for seed := range uint64(80) {
		r := rand.New(rand.NewPCG(seed, 1))
		var want bytes.Buffer
		var writes [][]byte
		for k := range r.IntN(30) {
			size := r.IntN(512) // chunk-sized, now and then over the limit
			if r.IntN(8) == 0 {
				size = r.IntN(3 * pipeLimit / 2)
			}
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(i*7 + k)
			}
			writes = append(writes, b)
			want.Write(b)
		}
		var closeErr error
		if seed%2 == 1 {
			closeErr = errors.New("cut")
		}
		p := newPipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range writes {
				if n, err := p.Write(b); n != len(b) || err != nil {
					t.Errorf("seed %d: write %d, %v", seed, n, err)
					return
				}
			}
			p.closeWrite(closeErr)
			if _, err := p.Write([]byte("x")); err == nil {
				t.Errorf("seed %d: write after the close succeeded", seed)
			}
		}()
		var got bytes.Buffer
		buf := make([]byte, 1+r.IntN(8<<10))
		var err error
		for {
			var n int
			n, err = p.Read(buf[:1+r.IntN(len(buf))])
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		<-done
		if want := cmpOr(closeErr, io.EOF); err != want {
			t.Fatalf("seed %d: read ended with %v, want %v", seed, err, want)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("seed %d: read %d bytes, %d written, or not the same", seed, got.Len(), want.Len())
		}
	}
}

func cmpOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// TestPipeReaderCloseReleasesABlockedWriter: a writer waiting for room
// (the caller stopped reading) returns the reader's close error as soon
// as the reader closes, and every later write fails with it.
func TestPipeReaderCloseReleasesABlockedWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipe()
		errc := make(chan error, 1)
		go func() {
			for {
				if _, err := p.Write(make([]byte, 4<<10)); err != nil {
					errc <- err
					return
				}
			}
		}()
		synctest.Wait() // the writer filled the buffer and waits
		select {
		case err := <-errc:
			t.Fatalf("writer returned %v before the close", err)
		default:
		}
		p.closeRead(errBodyClosed)
		if err := <-errc; err != errBodyClosed {
			t.Fatalf("blocked write returned %v, want the reader's close", err)
		}
		if _, err := p.Write([]byte("x")); err != errBodyClosed {
			t.Fatalf("later write returned %v", err)
		}
		if _, err := p.Read(make([]byte, 1)); err != io.ErrClosedPipe {
			t.Fatalf("read after the reader's close returned %v", err)
		}
	})
}

// TestPipeReaderWaitsForAWrite: a read with nothing written waits until a
// write or the writer's close.
func TestPipeReaderWaitsForAWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPipe()
		got := make(chan string, 2)
		go func() {
			b := make([]byte, 16)
			n, _ := p.Read(b)
			got <- string(b[:n])
			_, err := p.Read(b)
			got <- err.Error()
		}()
		synctest.Wait()
		if len(got) != 0 {
			t.Fatal("read returned before any write")
		}
		p.Write([]byte("data"))
		if s := <-got; s != "data" {
			t.Fatalf("read %q", s)
		}
		synctest.Wait()
		p.closeWrite(errBodyClosed)
		if s := <-got; s != errBodyClosed.Error() {
			t.Fatalf("read ended with %q", s)
		}
	})
}
