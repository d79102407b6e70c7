package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// TestGatewayDoesNotSendOnAConnectionTheUpstreamClosed: an upstream that
// closes its connection after an answer without saying so (no
// "Connection: close": a server shutting down gracefully closes its idle
// keep-alive connections, a short keep-alive timeout) leaves the gateway
// nothing to reuse; the next call, however soon, goes on a new
// connection and is answered — never a 502 "unexpected EOF" from a
// request written on the closed one.
func TestGatewayDoesNotSendOnAConnectionTheUpstreamClosed(t *testing.T) {
	t.Setenv(upstreamEnv, upstreamKey)
	const answer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer func() { _ = l.Close(); wg.Wait() }()
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// One answer, as HTTP/1.1 keep-alive, then the close.
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
			}
			_ = c.Close()
			closed <- struct{}{}
		}
	})
	g := startFuzzGateway(t, "http://"+l.Addr().String()+"/v1", fuzzUpstreamPolicies, "")
	for i := range 6 {
		a := g.post(t, devopsKey, []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`), false)
		if a.status != http.StatusOK {
			t.Errorf("call %d, after the upstream closed the previous call's connection: %d %s", i, a.status, a.body)
			continue
		}
		<-closed
	}
	g.checkNoPanic(t)
}
