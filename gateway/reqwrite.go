package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
)

// writeRequest writes req into w as req.Write would, byte for byte and
// error for error (FuzzWriteRequestMatchesRequestWrite), for a request of
// the shape the gateway sends upstream: a POST with a body of known
// length, no Transfer-Encoding, trailers or Connection: close, an ASCII
// Host without a zone, no client trace. Without fmt and the transfer
// writer, it costs none of Request.Write's six allocations. Any other
// request goes to req.Write itself. The body is copied into the buffer
// (see oneWrite): headers and body leave in one write when they fit.
func writeRequest(w *oneWrite, req *http.Request) error {
	host, ruri, ok := fastWritable(req)
	if !ok {
		return req.Write(w)
	}
	err := writeRequestHeader(w.bw, req, host, ruri)
	if err != nil {
		_ = req.Body.Close()
		return err
	}
	// The body as transferWriter.writeBody sends it: exactly ContentLength
	// bytes, then whatever is left read (and counted) to its end.
	n, err := w.readN(req.Body, req.ContentLength)
	if err != nil {
		_ = req.Body.Close()
		return err
	}
	extra, err := io.Copy(io.Discard, req.Body)
	n += extra
	if err != nil {
		_ = req.Body.Close()
		return err
	}
	if err := req.Body.Close(); err != nil {
		return err
	}
	if n != req.ContentLength {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	return nil
}

// fastWritable reports whether writeRequest writes req itself, with the
// Host header and request URI it then sends.
func fastWritable(req *http.Request) (host, ruri string, ok bool) {
	if req.Method != http.MethodPost || req.ContentLength <= 0 || req.Body == nil || req.Body == http.NoBody ||
		len(req.TransferEncoding) != 0 || req.Trailer != nil || req.Close || req.URL == nil {
		return "", "", false
	}
	host = req.Host
	if host == "" {
		host = req.URL.Host
	}
	for i := 0; i < len(host); i++ {
		if !plainHostByte(host[i]) {
			return "", "", false // punycode, an invalid Host, a zone: Request.Write's cases
		}
	}
	ruri = req.URL.RequestURI()
	for i := 0; i < len(ruri); i++ {
		if ruri[i] < ' ' || ruri[i] == 0x7f {
			return "", "", false // Request.Write's error
		}
	}
	if httptrace.ContextClientTrace(req.Context()) != nil {
		return "", "", false
	}
	return host, ruri, true
}

// plainHostByte reports whether c may be in a Host header that
// Request.Write sends unchanged: letters, digits and . - _ : [ ] (an
// address, a name, a port, an IPv6 literal without a zone).
func plainHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']'
}

// newlineToSpace is net/http's headerNewlineToSpace.
var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// requestWriteExcluded is net/http's reqWriteExcludeHeader: the headers
// Request.Write writes itself (or never), by their literal key.
func requestWriteExcluded(k string) bool {
	switch k {
	case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// writeRequestHeader writes the request line and headers of a request
// fastWritable accepted, as Request.write does.
func writeRequestHeader(bw *bufio.Writer, req *http.Request, host, ruri string) error {
	_, _ = bw.WriteString("POST ")
	_, _ = bw.WriteString(ruri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	ua := "Go-http-client/1.1" // net/http's defaultUserAgent
	if v, ok := req.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		_, _ = bw.WriteString("User-Agent: ")
		_, _ = bw.WriteString(textproto.TrimString(newlineToSpace.Replace(ua)))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("Content-Length: ")
	_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), req.ContentLength, 10))
	_, _ = bw.WriteString("\r\n")
	var arr [32]string
	keys := arr[:0]
	for k := range req.Header {
		if !requestWriteExcluded(k) && validHeaderName(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range req.Header[k] {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(textproto.TrimString(newlineToSpace.Replace(v)))
			_, _ = bw.WriteString("\r\n")
		}
	}
	// A bufio.Writer keeps its first write error and returns it from
	// every later call: the last one says whether any failed.
	_, err := bw.WriteString("\r\n")
	return err
}

// readN is ReadFrom(io.LimitReader(r, n)) without the LimitedReader: it
// reads up to n bytes of r into the buffer, flushing it when full, until
// n are read, r ends (io.EOF: no error) or fails.
func (w *oneWrite) readN(r io.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		if w.bw.Available() == 0 {
			if err := w.bw.Flush(); err != nil {
				return done, err
			}
		}
		buf := w.bw.AvailableBuffer()[:min(int64(w.bw.Available()), n-done)]
		m, err := r.Read(buf)
		if m > 0 {
			_, _ = w.bw.Write(buf[:m]) // into the buffer it was read into: no flush, no error
			done += int64(m)
		}
		if err == io.EOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// validHeaderName is httpguts.ValidHeaderFieldName: a non-empty token
// (RFC 7230), the header names Header.Write writes (it drops the rest).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
