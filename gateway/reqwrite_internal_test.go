package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"testing"
)

// reqShape is one request of the property test, made twice (each write
// consumes its body).
type reqShape struct {
	method, url, host string
	header            http.Header
	body              []byte
	contentLength     int64
	bodyKind          int // 0 bytes.Reader in NopCloser, 1 fails after half, 2 fails to close, 3 nil
	transferEncoding  []string
	close, trailer    bool
	trace             bool
	writeLimit        int // the connection fails after this many bytes (-1: never)
}

var errShapeRead = errors.New("body read failed")
var errShapeClose = errors.New("body close failed")
var errShapeWrite = errors.New("connection write failed")

type shapeBody struct {
	r        io.Reader
	failAt   int
	read     int
	closeErr error
	closed   *int
}

func (b *shapeBody) Read(p []byte) (int, error) {
	if b.failAt >= 0 && b.read >= b.failAt {
		return 0, errShapeRead
	}
	if b.failAt >= 0 && len(p) > b.failAt-b.read {
		p = p[:b.failAt-b.read]
	}
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *shapeBody) Close() error { *b.closed++; return b.closeErr }

type limitWriter struct {
	w     io.Writer
	limit int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.limit < 0 {
		return l.w.Write(p)
	}
	if len(p) > l.limit {
		n, _ := l.w.Write(p[:l.limit])
		l.limit = 0
		return n, errShapeWrite
	}
	l.limit -= len(p)
	return l.w.Write(p)
}

func (s reqShape) request(t *testing.T, closed *int) *http.Request {
	req, err := http.NewRequest(s.method, s.url, nil)
	if err != nil {
		return nil
	}
	if s.host != "-" {
		req.Host = s.host
	}
	req.Header = s.header
	switch s.bodyKind {
	case 0, 1, 2:
		b := &shapeBody{r: bytes.NewReader(s.body), failAt: -1, closed: closed}
		if s.bodyKind == 1 {
			b.failAt = len(s.body) / 2
		}
		if s.bodyKind == 2 {
			b.closeErr = errShapeClose
		}
		req.Body = b
	}
	req.ContentLength = s.contentLength
	req.TransferEncoding = s.transferEncoding
	req.Close = s.close
	if s.trailer {
		req.Trailer = http.Header{}
	}
	if s.trace {
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{}))
	}
	return req
}

func randomShape(rng *rand.Rand, key, value string) reqShape {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	s := reqShape{
		method: pick("POST", "POST", "POST", "POST", "GET", "", "PUT"),
		url: pick("http://h/v1/chat/completions", "http://127.0.0.1:8080/v1/chat/completions?api-version=1", "http://[::1]:9/v1/chat/completions",
			"http://h/a%20b/chat", "http://bücher.example/v1", "http://[fe80::1%25eth0]:80/v1", "http://h:80/v1/x?q=a b", "http://h", "http://user:pw@h/v1"),
		host:       pick("-", "-", "-", "", "other:81", "bad host", "ä.example", "h_x.example"),
		bodyKind:   []int{0, 0, 0, 0, 0, 0, 0, 1, 2, 3}[rng.IntN(10)],
		close:      rng.IntN(8) == 0,
		trailer:    rng.IntN(10) == 0,
		trace:      rng.IntN(10) == 0,
		writeLimit: -1,
	}
	n := rng.IntN(300)
	if rng.IntN(5) == 0 {
		n = rng.IntN(40000) // beyond the 16 KB buffer
	}
	s.body = make([]byte, n)
	for i := range s.body {
		s.body[i] = byte('a' + rng.IntN(26))
	}
	switch rng.IntN(8) {
	case 0:
		s.contentLength = int64(n) + 1
	case 1:
		s.contentLength = int64(n) - 1
	case 2:
		s.contentLength = -1
	default:
		s.contentLength = int64(n)
	}
	if rng.IntN(10) == 0 {
		s.transferEncoding = []string{"chunked"}
	}
	if rng.IntN(6) == 0 {
		s.writeLimit = rng.IntN(n + 400)
	}
	keys := []string{"Content-Type", "Accept", "Authorization", "User-Agent", "X-Custom", "x-lower", "Bad Key", "", "Ключ", "X_U", "Content-Length",
		"Transfer-Encoding", "Trailer", "Host", "Connection", "A", "Z", "X-Stainless-Lang", "Openai-Organization", key}
	values := []string{"application/json", "  padded\t", "a\r\nInjected: 1", "multi\nline", "", "Go-http-client/2", "Bearer sk-x", "\x01ctl", value}
	s.header = http.Header{}
	for range rng.IntN(10) {
		k := keys[rng.IntN(len(keys))]
		switch rng.IntN(6) {
		case 0:
			s.header[k] = nil
		case 1:
			s.header[k] = []string{values[rng.IntN(len(values))], values[rng.IntN(len(values))]}
		default:
			s.header[k] = []string{values[rng.IntN(len(values))]}
		}
	}
	if rng.IntN(8) == 0 {
		s.header = nil
	}
	return s
}

// checkWriteRequest writes the request of s with Request.Write (the slow
// path, as the transport wrote every request before) and with
// writeRequest, each into a 16 KB buffer over a connection that may fail,
// and compares the bytes sent, the errors and the body's closing.
func checkWriteRequest(t *testing.T, s reqShape) (fast bool) {
	var closedA, closedB int
	a, b := s.request(t, &closedA), s.request(t, &closedB)
	if a == nil {
		return false
	}
	_, _, fast = fastWritable(b)
	var outA, outB bytes.Buffer
	bwA := bufio.NewWriterSize(&limitWriter{w: &outA, limit: s.writeLimit}, upstreamBufSize)
	bwB := bufio.NewWriterSize(&limitWriter{w: &outB, limit: s.writeLimit}, upstreamBufSize)
	errA := a.Write(&oneWrite{bw: bwA})
	errB := writeRequest(&oneWrite{bw: bwB}, b)
	if errA == nil {
		errA = bwA.Flush()
	}
	if errB == nil {
		errB = bwB.Flush()
	}
	if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
		t.Fatalf("%+v (fast %v):\nRequest.Write error %v\nwriteRequest error %v", s, fast, errA, errB)
	}
	if outA.String() != outB.String() {
		t.Fatalf("%+v (fast %v):\nRequest.Write sent\n%q\nwriteRequest sent\n%q", s, fast, outA.String(), outB.String())
	}
	if closedA != closedB {
		t.Fatalf("%+v (fast %v): body closed %d times by Request.Write, %d by writeRequest", s, fast, closedA, closedB)
	}
	return fast
}

// writeRequest sends what Request.Write sends, fails as it fails and
// closes the body as it does, for every request: the gateway's own (its
// fast path) and any other (random methods, URLs, Host headers, header
// names and values, including invalid ones and line breaks, bodies
// shorter or longer than their length, failing reads, closes and
// connections, chunked, Connection: close, trailers, a client trace).
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 5))
	fast := 0
	for range 3000 {
		if checkWriteRequest(t, randomShape(rng, "X-Extra", "v")) {
			fast++
		}
	}
	if fast < 500 {
		t.Fatalf("only %d of 3000 requests took the fast path", fast)
	}
	// The gateway's request itself.
	s := reqShape{method: "POST", url: "http://127.0.0.1:8080/v1/chat/completions", host: "-", bodyKind: 0, body: []byte(`{"model":"m"}`), contentLength: 13, writeLimit: -1,
		header: http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}, "Authorization": {"Bearer sk-1"}, "User-Agent": {"OpenAI/Python 1.0"}}}
	if !checkWriteRequest(t, s) {
		t.Fatal("the gateway's request does not take the fast path")
	}
	// Fewer allocations than Request.Write (the request's own making
	// counted in both).
	var closed int
	bw := bufio.NewWriterSize(io.Discard, upstreamBufSize)
	slow := testing.AllocsPerRun(200, func() { _ = s.request(t, &closed).Write(&oneWrite{bw: bw}); bw.Reset(io.Discard) })
	fastAllocs := testing.AllocsPerRun(200, func() { _ = writeRequest(&oneWrite{bw: bw}, s.request(t, &closed)); bw.Reset(io.Discard) })
	if fastAllocs > slow-4 {
		t.Fatalf("writeRequest: %v allocations, Request.Write %v", fastAllocs, slow)
	}
}

func FuzzWriteRequestMatchesRequestWrite(f *testing.F) {
	for i := range 20 {
		f.Add(uint64(i), "X-Fuzz", "v")
	}
	f.Add(uint64(99), "Bad\r\nKey", "a\r\n\r\nGET / HTTP/1.1")
	f.Fuzz(func(t *testing.T, seed uint64, key, value string) {
		checkWriteRequest(t, randomShape(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), key, value))
	})
}
