// Package httprr is a test helper of the adapters: it replays HTTP traffic
// recorded in the ".httprr" trace format of langchaingo's internal/httprr
// package (github.com/tmc/langchaingo, internal/httprr/rr.go), so that
// tokenwise tests can run langchaingo's own recordings of real provider
// traffic through the real langchaingo clients.
//
// langchaingo's package is internal to its module and cannot be imported;
// this is a minimal, replay-only reader of the same files. It never records
// and never touches the network.
//
// # Format
//
// A trace is the line "httprr trace v1" followed by records. Each record is
// a line "n1 n2" (decimal byte counts, LF or CRLF terminated) followed by n1
// bytes of the request, as written by [http.Request.WriteProxy], and n2
// bytes of the response, as written by [http.Response.Write]. A file whose
// name ends in ".gz" is gzip-compressed.
//
// langchaingo scrubs credentials and volatile headers before it records, so
// the replayer matches a request by method, URL and body only (headers are
// ignored). Bodies match byte for byte, or with [Replayer.MatchJSON] set
// also as equal JSON documents.
// When several records have the same key they are served in the order they
// were recorded, and the last one is repeated once they are used up (as
// langchaingo's replayer, which keeps the last record of a key, does).
package httprr

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

// header is the first line of every trace.
const header = "httprr trace v1"

// Record is one request/response pair of a trace.
type Record struct {
	Method string
	URL    string
	Body   []byte // the request body
	// Request and Response are the records' wire text, as stored.
	Request  string
	Response string
}

// Replayer is an [http.RoundTripper] that answers requests with the
// responses of a trace. It is safe for concurrent use.
type Replayer struct {
	// MatchJSON, when set, also matches a request whose body is a JSON
	// document equal to a recorded one (key order and white space aside).
	// Set it before the first request.
	MatchJSON bool

	file    string
	records []Record

	mu     sync.Mutex
	served map[int]int // key index -> responses served for that key
}

// Open reads the trace file (".httprr", or ".httprr.gz" compressed).
func Open(file string) (*Replayer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(file, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("tokenwise/httprr: %s: %w", file, err)
		}
		data, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("tokenwise/httprr: %s: %w", file, err)
		}
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/httprr: %s: %w", file, err)
	}
	r.file = file
	return r, nil
}

// Parse reads a trace from memory.
func Parse(data []byte) (*Replayer, error) {
	s := string(data)
	line, s, ok := strings.Cut(s, "\n")
	if !ok || strings.TrimSuffix(line, "\r") != header {
		return nil, fmt.Errorf("not an httprr trace (want first line %q)", header)
	}
	r := &Replayer{served: map[int]int{}}
	for s != "" {
		line, rest, ok := strings.Cut(s, "\n")
		f1, f2, _ := strings.Cut(strings.TrimSuffix(line, "\r"), " ")
		n1, err1 := strconv.Atoi(f1)
		n2, err2 := strconv.Atoi(f2)
		if !ok || err1 != nil || err2 != nil || n1 < 0 || n2 < 0 || n1 > len(rest) || n2 > len(rest)-n1 {
			return nil, fmt.Errorf("corrupt httprr trace: record %d: bad length line %q", len(r.records)+1, line)
		}
		reqText, respText := rest[:n1], rest[n1:n1+n2]
		s = rest[n1+n2:]
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(reqText)))
		if err != nil {
			return nil, fmt.Errorf("corrupt httprr trace: record %d: request: %w", len(r.records)+1, err)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("corrupt httprr trace: record %d: request body: %w", len(r.records)+1, err)
		}
		// Check the response parses now, so that a corrupt trace fails at Open.
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(respText)), req)
		if err != nil {
			return nil, fmt.Errorf("corrupt httprr trace: record %d: response: %w", len(r.records)+1, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return nil, fmt.Errorf("corrupt httprr trace: record %d: response body: %w", len(r.records)+1, err)
		}
		r.records = append(r.records, Record{
			Method:   req.Method,
			URL:      requestURL(req),
			Body:     body,
			Request:  reqText,
			Response: respText,
		})
	}
	return r, nil
}

// requestURL returns the absolute URL of a request read from a trace.
func requestURL(req *http.Request) string {
	if req.URL.IsAbs() {
		return req.URL.String()
	}
	u := *req.URL
	u.Scheme, u.Host = "https", req.Host
	return u.String()
}

// Records returns the trace's records, in file order. The returned slice
// and its contents must not be modified.
func (r *Replayer) Records() []Record { return r.records }

// Client returns an *http.Client whose transport is r.
func (r *Replayer) Client() *http.Client { return &http.Client{Transport: r} }

// RoundTrip answers req with the recorded response of the first record
// (in file order, not yet served) whose method, URL and body match. It
// returns an error naming the request when no record matches.
func (r *Replayer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	url := req.URL.String()
	var matches []int
	for i, rec := range r.records {
		if rec.Method == req.Method && rec.URL == url && bytes.Equal(rec.Body, body) {
			matches = append(matches, i)
		}
	}
	if len(matches) == 0 && r.MatchJSON {
		for i, rec := range r.records {
			if rec.Method == req.Method && rec.URL == url && jsonEqual(rec.Body, body) {
				matches = append(matches, i)
			}
		}
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("tokenwise/httprr: %s: no recorded response for %s %s with body:\n%s", r.name(), req.Method, url, body)
	}
	// Records with an identical key share one queue, keyed by the first.
	r.mu.Lock()
	n := r.served[matches[0]]
	r.served[matches[0]] = n + 1
	r.mu.Unlock()
	rec := r.records[matches[min(n, len(matches)-1)]]
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(rec.Response)), req)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/httprr: %s: corrupt response: %w", r.name(), err)
	}
	return resp, nil
}

func (r *Replayer) name() string {
	if r.file == "" {
		return "trace"
	}
	return r.file
}

// jsonEqual reports whether a and b are equal JSON documents (key order and
// white space aside).
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, err1 := json.Marshal(va)
	cb, err2 := json.Marshal(vb)
	return err1 == nil && err2 == nil && bytes.Equal(ca, cb)
}
