package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// earlyAnswerUpstream answers every request from its headers alone, with
// status (a status line's code and reason) and the JSON body, before
// reading the request's body, and closes the connection (with the body
// unread, the upstream's socket resets it): as a Go server does to a large
// body its handler refused unread, or a proxy's 401, 413 or 429.
func earlyAnswerUpstream(t *testing.T, status, body string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)
			})
		}
	})
	return "http://" + l.Addr().String() + "/v1"
}

// TestGatewayPassesAnAnswerSentBeforeTheBodyWasRead: an upstream that
// refuses a call from its headers (a wrong key: 401; a body over its
// limit: 413) and closes the connection without reading the body resets
// the gateway's write of the body; its answer, already sent, is what the
// client gets — its status and error, as net/http's Transport would pass
// them — never a 502 "connection reset by peer". Whatever the body's size.
func TestGatewayPassesAnAnswerSentBeforeTheBodyWasRead(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	for _, up := range []struct {
		status        int
		line, message string
	}{
		{401, "401 Unauthorized", "Incorrect API key provided"},
		{413, "413 Request Entity Too Large", "Request body too large for this upstream"},
	} {
		answer := `{"error":{"message":"` + up.message + `","type":"invalid_request_error","code":null}}`
		g := startFuzzGateway(t, earlyAnswerUpstream(t, up.line, answer), fuzzUpstreamPolicies, "limits: {max_body: 16MiB}\n")
		for _, size := range []int{1 << 10, 256 << 10, 1 << 20, 8 << 20} {
			for _, stream := range []bool{false, true} {
				body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"messages":[{"role":"user","content":"%s"}]}`, stream, strings.Repeat("a ", size/2))
				a := g.post(t, devopsKey, []byte(body), false)
				if a.status != up.status || !strings.Contains(string(a.body), up.message) {
					t.Errorf("a body of %d bytes (stream %t) the upstream refused with %d: the client got %d %s", size, stream, up.status, a.status, a.body)
				}
			}
		}
		g.checkNoPanic(t)
		g.stop()
	}
}
