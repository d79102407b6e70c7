package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/gateway"
)

// A gateway's clients and upstreams that stop, stall or trickle never
// hold a call, its connection or its budget for good ("never a hang").
// Each test runs in a synctest bubble over the pipe listener of
// drain_test.go: a net.Pipe buffers nothing, so a client that stops
// reading blocks the gateway's next write at once.

// bubbleGateway serves a gateway (the devops team: the policy devops,
// extra appended to the gateway file) on a pipe listener inside the
// caller's bubble, in front of base (nil: an upstream answering long,
// healthy streams: 4,000 chunks or deltas of 100 bytes). It returns a
// dialer to the gateway, its logs, the gateway and its Close.
func bubbleGateway(t *testing.T, devops, extra string, base http.RoundTripper) (dial func() net.Conn, logs *syncBuffer, srv *gateway.Server, closeAll func()) {
	t.Helper()
	return bubbleGatewayReply(t, devops, extra, base, openaitest.Reply{Content: strings.Repeat("x", 400_000), ChunkSize: 100})
}

// bubbleGatewayReply is bubbleGateway whose upstream answers chat
// completions with reply.
func bubbleGatewayReply(t *testing.T, devops, extra string, base http.RoundTripper, reply openaitest.Reply) (dial func() net.Conn, logs *syncBuffer, srv *gateway.Server, closeAll func()) {
	t.Helper()
	t.Setenv(upstreamEnv, upstreamKey)
	up := openaitest.New()
	up.Default(reply)
	if base == nil {
		base = longResponses{up.Transport()}
	}
	cfgPath := writeFiles(t, up.URL, map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": devops}, extra)
	logs = &syncBuffer{}
	srv, tr, served := servePipe(t, cfgPath, base, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	dial = func() net.Conn {
		c, err := tr.DialContext(context.Background(), "tcp", "gateway:80")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var once sync.Once
	return dial, logs, srv, func() {
		once.Do(func() {
			_ = srv.Close()
			<-served
		})
	}
}

const bubbleDevops = `version: 1
name: devops
timeouts: {call: 5s, first_token: 1s, idle: 1s}
budget:
  team: {period: monthly, max_usd: 1}
`

// streamCalls are a streamed chat completion and a streamed Responses call.
var streamCalls = []struct{ name, path, body string }{
	{"chat", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
	{"responses", "/v1/responses", `{"model":"gpt-4o-mini","stream":true,"input":"hi"}`},
}

func requestHead(path string, n int) string {
	return "POST " + path + " HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + devopsKey +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n"
}

func spendOf(srv *gateway.Server) string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/spend", nil)
	req.Header.Set("Authorization", "Bearer "+devopsKey)
	srv.Handler().ServeHTTP(rec, req)
	return rec.Body.String()
}

// settled reports whether the team's spend (spendOf) holds nothing: no
// reservation, no call in flight.
func settled(spend string) bool {
	return strings.Contains(spend, `"in_flight_calls":0`) &&
		(strings.Contains(spend, `"reserved_usd":"0.000000"`) || strings.Contains(spend, `"tracked":false`))
}

// A client that sends a request's headers and only part of its body does
// not hold the handler and its connection: the http.Server has a
// ReadHeaderTimeout only (a whole-request ReadTimeout would cut long
// streams), and the body is read by the handler (the chat handler's
// io.ReadAll of a chunked body, the transport's readBody, the Responses
// call's read) before any of the team's timeouts starts. Slowloris: each
// such connection would cost a goroutine and a socket, forever. The body
// has limits.read_timeout (30s by default) to come whole; then the client
// gets OpenAI's 408 and the connection is closed.
func TestGatewayRequestBodyReadIsBounded(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat chunked", "/v1/chat/completions", streamCalls[0].body})
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, _, srv, closeAll := bubbleGateway(t, bubbleDevops, "limits: {read_header_timeout: 1s}\n", nil)
				defer closeAll()
				c := dial()
				defer c.Close()
				head := requestHead(call.path, len(call.body)) + call.body[:10]
				if strings.HasSuffix(call.name, "chunked") {
					head = strings.Replace(requestHead(call.path, 0), "Content-Length: 0", "Transfer-Encoding: chunked", 1) +
						strconv.FormatInt(int64(len(call.body)), 16) + "\r\n" + call.body[:10]
				}
				start := time.Now()
				if _, err := io.WriteString(c, head); err != nil {
					t.Fatal(err)
				}
				answered := make(chan string, 1)
				var took time.Duration
				go func() {
					b, _ := io.ReadAll(c) // the answer, to the server's close
					took = time.Since(start)
					answered <- string(b)
				}()
				time.Sleep(5 * time.Minute)
				synctest.Wait()
				var got string
				select {
				case got = <-answered:
				default:
					t.Fatalf("a request whose body never comes still holds its connection after 5 minutes (read_header_timeout 1s, the team's call timeout 5s)")
				}
				if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, `"code":"request_timeout"`) || !strings.Contains(got, "limits.read_timeout (30s)") {
					t.Errorf("the answer to a body that never came: %q, want OpenAI's 408 request_timeout naming limits.read_timeout", got)
				}
				if took < 30*time.Second || took > 31*time.Second {
					t.Errorf("the 408 came (and the connection closed) after %v, want read_timeout's 30s: %q", took, got)
				}
				if !settled(spendOf(srv)) {
					t.Errorf("after the 408, the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}

// The body's deadline cuts neither a legitimate body that comes slowly
// (in pieces over 20s, within the default limits.read_timeout of 30s) nor
// the answer after it: it is lifted once the body is read, so that a
// stream answered over 60s is served whole.
func TestGatewayReadTimeoutSparesSlowBodiesAndLongAnswers(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat chunked", "/v1/chat/completions", streamCalls[0].body})
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A chat stream of 60 chunks, one a second; a Responses
				// stream of 4,000 deltas, read by a client that takes
				// 60s over it.
				dial, _, srv, closeAll := bubbleGatewayReply(t, "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n", "", nil,
					openaitest.Reply{Content: strings.Repeat("x", 60), ChunkSize: 1, ChunkLatency: time.Second})
				defer closeAll()
				c := dial()
				defer c.Close()
				// A body of 64KiB (the prompt padded with spaces), sent in
				// 8 pieces 2.5s apart.
				body := strings.Replace(call.body, `"model"`, strings.Repeat(" ", 64<<10-len(call.body))+`"model"`, 1)
				head := requestHead(call.path, len(body))
				chunked := strings.HasSuffix(call.name, "chunked")
				if chunked {
					head = strings.Replace(requestHead(call.path, 0), "Content-Length: 0", "Transfer-Encoding: chunked", 1)
				}
				resp := make(chan *http.Response, 1)
				go func() {
					r, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						t.Error(err)
						close(resp)
						return
					}
					resp <- r
				}()
				start := time.Now()
				if _, err := io.WriteString(c, head); err != nil {
					t.Fatal(err)
				}
				for i := range 8 {
					piece := body[i*len(body)/8 : (i+1)*len(body)/8]
					if chunked {
						piece = strconv.FormatInt(int64(len(piece)), 16) + "\r\n" + piece + "\r\n"
						if i == 7 {
							piece += "0\r\n\r\n"
						}
					}
					time.Sleep(2500 * time.Millisecond)
					if _, err := io.WriteString(c, piece); err != nil {
						t.Fatal(err)
					}
				}
				r := <-resp
				if r == nil {
					return
				}
				if r.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(r.Body)
					t.Fatalf("a body sent over 20s (read_timeout 30s): %d %s", r.StatusCode, b)
				}
				var got []byte
				for {
					b := make([]byte, 4096)
					n, err := r.Body.Read(b)
					got = append(got, b[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("the answer after %v: %v", time.Since(start), err)
					}
					if call.name == "responses" && len(got) > 100_000 {
						// 60s over the stream's last ~3,000 reads (the first
						// 100KB read at once: see
						// TestGatewayClientThatStopsReadingEndsItsCall).
						time.Sleep(20 * time.Millisecond)
					}
				}
				if d := time.Since(start); d < 60*time.Second {
					t.Errorf("the answer took %v: want a stream that outlasts read_timeout (30s)", d)
				}
				done := `data: [DONE]`
				if call.name == "responses" {
					done = `"type":"response.completed"`
				}
				if !strings.Contains(string(got), done) {
					t.Errorf("the stream was not served whole: %d bytes, ends %q", len(got), got[max(0, len(got)-200):])
				}
				synctest.Wait()
				if !settled(spendOf(srv)) {
					t.Errorf("the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}

// A client that reads a streamed answer's headers, then part of it, and
// then stops reading (a stuck consumer, a half-dead connection) would
// block the handler's write for good without a write deadline; meanwhile
// nothing reads the upstream answer: for chat, the transport's chain
// would stay parked in its stream function, past the team's call (5s) and
// idle (1s) limits. The call would never end: never logged, its team
// budget hold (and any rate-limit concurrency slot) held, in_flight_calls
// 1. The write deadline (the team's idle limit, for a stream) fails the
// write, the call's context is cancelled, and the call ends as a client's
// hang-up does: logged, its hold settled.
//
// (The client reads three quarters of the stream first: the Responses
// answer is copied by httputil.ReverseProxy, whose first flush waits on
// a sync.Mutex the copy holds, and synctest does not count a goroutine
// waiting on a mutex as durably blocked — the bubble's clock would stop
// if the client stopped before that flush ran.)
func TestGatewayClientThatStopsReadingEndsItsCall(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat json", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`})
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, logs, srv, closeAll := bubbleGateway(t, bubbleDevops, "", nil)
				defer closeAll()
				c := dial()
				defer c.Close()
				if _, err := io.WriteString(c, requestHead(call.path, len(call.body))+call.body); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if _, err := io.ReadFull(resp.Body, make([]byte, 300_000)); err != nil {
					t.Fatal(err)
				}
				// The client reads no more, and keeps its connection open.
				time.Sleep(5 * time.Minute)
				synctest.Wait()
				if !strings.Contains(logs.String(), `"call_id"`) {
					t.Fatalf("5 minutes after a stream's client stopped reading, its call (timeouts call 5s, idle 1s) has not ended: nothing logged; the team's spend: %s", spendOf(srv))
				}
				if !strings.Contains(logs.String(), "the client did not take the answer in within the write timeout") {
					t.Errorf("the call's end does not say the client stopped reading: %s", logs.String())
				}
				if !settled(spendOf(srv)) {
					t.Errorf("after the call ended, the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}

// The write deadline is armed again at every write: a client that reads
// slowly but steadily (4KiB every 250ms) an answer that takes it 25s, ten
// times the gateway's limits.write_timeout of 2s, gets it whole. (The
// Responses stream's first 100KB are read at once: see
// TestGatewayClientThatStopsReadingEndsItsCall.)
func TestGatewayWriteTimeoutSparesASlowSteadyReader(t *testing.T) {
	calls := append(streamCalls[:len(streamCalls):len(streamCalls)], struct{ name, path, body string }{"chat json", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`})
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, logs, srv, closeAll := bubbleGateway(t, "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 1}\n", "limits: {write_timeout: 2s}\n", nil)
				defer closeAll()
				c := dial()
				defer c.Close()
				if _, err := io.WriteString(c, requestHead(call.path, len(call.body))+call.body); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 0, 1<<20)
				if call.name == "responses" {
					got = got[:100_000]
					if _, err := io.ReadFull(resp.Body, got); err != nil {
						t.Fatal(err)
					}
				}
				for {
					b := make([]byte, 4096)
					n, err := resp.Body.Read(b)
					got = append(got, b[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("after %v and %d bytes: %v", time.Since(start), len(got), err)
					}
					time.Sleep(250 * time.Millisecond)
				}
				if d := time.Since(start); d < 20*time.Second {
					t.Errorf("the client read the answer in %v: want much longer than write_timeout", d)
				}
				if n := strings.Count(string(got), "x"); n < 400_000 {
					t.Errorf("the client got %d of the answer's 400,000 x's", n)
				}
				synctest.Wait()
				if strings.Contains(logs.String(), "write timeout") || !settled(spendOf(srv)) {
					t.Errorf("the call was cut: %s; spend %s", logs.String(), spendOf(srv))
				}
			})
		})
	}
}

// A connection upgraded through the gateway (a WebSocket passed through)
// is its new owners': the gateway's deadlines on the request (its write
// deadline, armed as the request began) do not cut it (net/http lifts a
// connection's deadlines when it is hijacked).
func TestGatewayUpgradedConnectionOutlivesTheDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		upC, upS := net.Pipe() // the upstream's end of the upgraded connection echoes
		go func() { _, _ = io.Copy(upS, upS) }()
		defer upS.Close()
		base := upgradeTransport(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
			return &http.Response{StatusCode: http.StatusSwitchingProtocols, Status: "101 Switching Protocols", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: h, Body: upC, Request: r}, nil
		})
		dial, _, _, closeAll := bubbleGateway(t, "version: 1\nname: devops\n", "limits: {read_timeout: 1s, write_timeout: 2s}\n", base)
		defer closeAll()
		c := dial()
		defer c.Close()
		if _, err := io.WriteString(c, "GET /v1/models/ws HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer "+devopsKey+
			"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		for i := range 3 {
			time.Sleep(10 * time.Second)
			if _, err := io.WriteString(c, "ping"); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
				t.Fatalf("echo %d, %ds after the upgrade (write_timeout 2s): %q, %v", i, 10*(i+1), got, err)
			}
		}
	})
}

type upgradeTransport func(*http.Request) (*http.Response, error)

func (f upgradeTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The setup of the tests above serves both calls whole to a client that
// reads them, and logs them.
func TestGatewayServesLongStreamsWhole(t *testing.T) {
	for _, call := range streamCalls {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, logs, _, closeAll := bubbleGateway(t, bubbleDevops, "", nil)
				defer closeAll()
				c := dial()
				defer c.Close()
				if _, err := io.WriteString(c, requestHead(call.path, len(call.body))+call.body); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || err != nil || len(b) < 400_000 {
					t.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(b), err)
				}
				synctest.Wait()
				if !strings.Contains(logs.String(), `"call_id"`) {
					t.Fatalf("nothing logged: %s", logs.String())
				}
			})
		})
	}
}

// A streamed Responses call's first_token and idle clocks count events
// with a data payload, not bytes: an upstream that answers with SSE
// comments only (": keepalive", which proxies and servers send while a
// model is stuck) does not pass them, so under a team policy that bounds
// streams by first_token and idle (no call limit) a stream that never
// produces an event ends at first_token, as the chat path's does (which
// counts chunks: the same upstream gets the caller a 504). A stream whose
// events stop, followed by comments only, ends at idle.
func TestGatewayKeepaliveOnlyStreamEndsAtFirstToken(t *testing.T) {
	created := "event: response.created\r\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4o-mini\",\"output\":[]}}\r\n\r\n"
	for _, call := range []struct {
		name, path, body, first, want string
	}{
		{"chat", streamCalls[0].path, streamCalls[0].body, "", "no first token in time"},
		{"responses", streamCalls[1].path, streamCalls[1].body, "", "first token"},
		{"responses after an event", streamCalls[1].path, streamCalls[1].body, created, "idle"},
	} {
		t.Run(call.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dial, _, srv, closeAll := bubbleGateway(t, "version: 1\nname: devops\ntimeouts: {first_token: 1s, idle: 1s}\n", "", keepaliveOnly{first: call.first})
				defer closeAll()
				c := dial()
				defer c.Close()
				if _, err := io.WriteString(c, requestHead(call.path, len(call.body))+call.body); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				ended := make(chan string, 1)
				var took time.Duration
				go func() {
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						ended <- err.Error()
						return
					}
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					took = time.Since(start)
					ended <- strconv.Itoa(resp.StatusCode) + " " + string(b[max(0, len(b)-400):])
				}()
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				select {
				case got := <-ended:
					t.Logf("ended: %s", got)
					if !strings.Contains(got, call.want) {
						t.Errorf("the stream ended with %q, want the %q limit's error", got, call.want)
					}
					if took < time.Second || took > 1200*time.Millisecond {
						t.Errorf("the stream ended after %v, want its limit's 1s", took)
					}
				default:
					t.Fatalf("a stream of keep-alive comments only is still open after 10 minutes (first_token 1s, idle 1s)")
				}
				if !settled(spendOf(srv)) {
					t.Errorf("the team's spend holds something: %s", spendOf(srv))
				}
			})
		})
	}
}

// keepaliveOnly answers every call with an event stream of its first
// event (none: "") then SSE comments, one every 100ms, until the call's
// context ends.
type keepaliveOnly struct{ first string }

func (k keepaliveOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	pr, pw := io.Pipe()
	stop := context.AfterFunc(r.Context(), func() { pw.CloseWithError(r.Context().Err()) })
	go func() {
		defer stop()
		if k.first != "" {
			if _, err := io.WriteString(pw, k.first); err != nil {
				return
			}
		}
		for {
			if _, err := io.WriteString(pw, ": keepalive\n\n"); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				// Closed here too: stop (deferred) may run before the
				// context's end reaches the AfterFunc, and stop it.
				pw.CloseWithError(r.Context().Err())
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Body: pr, ContentLength: -1, Request: r}, nil
}

// longResponses answers a streamed Responses call with a long healthy
// stream (4,000 deltas of 100 bytes) and passes every other request to next.
type longResponses struct{ next http.RoundTripper }

func (rt longResponses) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/responses") {
		return rt.next.RoundTrip(r)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	pr, pw := io.Pipe()
	stop := context.AfterFunc(r.Context(), func() { pw.CloseWithError(r.Context().Err()) })
	resp := func(status, usage string) string {
		return `{"id":"resp_1","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini",` +
			`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
			`"usage":` + usage + `}`
	}
	go func() {
		defer stop()
		w := func(s string) bool { _, err := io.WriteString(pw, s); return err == nil }
		if !w("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" + resp("in_progress", "null") + "}\n\n") {
			return
		}
		delta := strings.Repeat("x", 100)
		for i := 1; i <= 4000; i++ {
			if !w("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":" + strconv.Itoa(i) +
				",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"" + delta + "\"}\n\n") {
				return
			}
		}
		w("event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":4001,\"response\":" + resp("completed", `{"input_tokens":1,"output_tokens":4000,"total_tokens":4001}`) + "}\n\n")
		pw.Close()
	}()
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Body: pr, ContentLength: -1, Request: r}, nil
}
