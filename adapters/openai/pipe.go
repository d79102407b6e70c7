package openai

import (
	"io"
	"sync"
)

// pipeLimit is how many bytes of a stream a pipe holds for a caller that
// has not read them yet; a write beyond it waits for the caller.
const pipeLimit = 32 << 10

// pipe carries a stream's events from the chain's goroutine to the
// caller's reads. Unlike io.Pipe it buffers: a write appends to the buffer
// and returns at once (until pipeLimit bytes wait), and a read takes every
// byte written since the last one, so that a caller reading 4 KB at a time
// wakes once per batch of chunks rather than once per chunk, and the chain
// is not parked until each chunk is read.
//
// Errors follow io.Pipe: closeWrite(err) makes reads return err (io.EOF
// for nil) once the buffered bytes are read; closeRead(err) makes writes
// return err at once and drops what was buffered. The first close of each
// side wins.
type pipe struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when bytes, room or a close arrive
	waiting int       // goroutines waiting on cond
	buf     []byte    // written, not read; buf[off:] is unread
	off     int
	werr    error // the writer's close, nil while open
	rerr    error // the reader's close, nil while open
}

var pipeBufs = sync.Pool{New: func() any { return new([]byte) }}

func newPipe() *pipe {
	p := &pipe{buf: *pipeBufs.Get().(*[]byte)}
	p.cond.L = &p.mu
	return p
}

// release gives the buffer back for another stream, once both sides are
// done with it: the writer closed and every byte read, or the reader
// closed. Writes fail from then on, so nothing touches it again.
func (p *pipe) release() {
	if p.buf != nil && cap(p.buf) <= 2*pipeLimit {
		b := p.buf[:0]
		pipeBufs.Put(&b)
	}
	p.buf, p.off = nil, 0
}

func (p *pipe) wait() {
	p.waiting++
	p.cond.Wait()
	p.waiting--
}

func (p *pipe) wake() {
	if p.waiting > 0 {
		p.cond.Broadcast()
	}
}

// Write appends b; it waits while pipeLimit bytes are unread.
func (p *pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.rerr != nil:
			return 0, p.rerr
		case p.werr != nil:
			return 0, io.ErrClosedPipe
		}
		if len(p.buf)-p.off < pipeLimit {
			break
		}
		p.wait()
	}
	if p.off > 0 && p.off >= len(p.buf)-p.off { // reuse the read front
		p.buf, p.off = p.buf[:copy(p.buf, p.buf[p.off:])], 0
	}
	p.buf = append(p.buf, b...)
	p.wake()
	return len(b), nil
}

// Read reads what was written, waiting for a write or a close.
func (p *pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.rerr != nil {
			return 0, io.ErrClosedPipe
		}
		if p.off < len(p.buf) {
			n := copy(b, p.buf[p.off:])
			p.off += n
			p.wake()
			return n, nil
		}
		if p.werr != nil {
			p.release()
			return 0, p.werr
		}
		p.wait()
	}
}

// closeWrite ends the stream: reads return err (io.EOF when nil) once the
// buffered bytes are read.
func (p *pipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.werr == nil {
		p.werr = err
	}
	p.wake()
	p.mu.Unlock()
}

// closeRead is the caller's close: writes return err from now on.
func (p *pipe) closeRead(err error) {
	p.mu.Lock()
	if p.rerr == nil {
		p.rerr = err
		p.release()
	}
	p.wake()
	p.mu.Unlock()
}
