package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// refUpstreamHeader is the header map a chat completion went upstream with
// before outHeader set Content-Type and Accept itself (the slow path): the
// caller's headers but the hop-by-hop ones and its credentials, the
// upstream's key, then the transport's own (adapters/openai: no
// Content-Length nor Accept-Encoding, Content-Type JSON, Accept JSON or
// SSE), set on a copy.
func refUpstreamHeader(in http.Header, key string, stream bool) http.Header {
	h := http.Header{}
	for k, v := range in {
		if !isHop(http.CanonicalHeaderKey(k)) {
			h[k] = v
		}
	}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	delete(h, "Content-Length")
	delete(h, "Accept-Encoding")
	// A caller's organization and project are never forwarded (the
	// upstream of headerGateway names none).
	delete(h, "Openai-Organization")
	delete(h, "Openai-Project")
	h["Content-Type"] = []string{"application/json"}
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	h["Accept"] = []string{accept}
	return h
}

// headerGateway is a gateway (full default policy, one upstream with key)
// whose base transport records the header map of each upstream call and
// answers it with answer.
func headerGateway(t *testing.T, key string) (url string, got func() http.Header) {
	t.Helper()
	dir := t.TempDir()
	pd := filepath.Join(dir, "policies")
	if err := os.Mkdir(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "default.yaml"), []byte("version: 1\nname: default\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "devops.yaml"), []byte("version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 100}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyLine := ""
	if key != "" {
		t.Setenv("TOKENWISE_GATEWAY_INTERNAL_TEST_KEY", key)
		keyLine = "    api_key_env: TOKENWISE_GATEWAY_INTERNAL_TEST_KEY\n"
	}
	cfg := "policies: policies\nupstreams:\n  - name: up\n    base_url: http://upstream.invalid/v1\n" + keyLine +
		"keys:\n  - {name: k, team: devops, sha256: " + HashKey("tw-internal-test-key-0123456789abcdef") + "}\n"
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last http.Header
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		last = r.Header
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		body := `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
		ct := "application/json"
		if r.Header.Get("Accept") == "text/event-stream" {
			ct = "text/event-stream"
			body = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}` + "\n\ndata: [DONE]\n\n"
		}
		return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {ct}, "Content-Length": {strconv.Itoa(len(body))}},
			Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	})
	s, err := New(c, WithLogger(slog.New(slog.DiscardHandler)), WithBaseTransport(base), WithPolicyWatch(false))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + l.Addr().String(), func() http.Header {
		mu.Lock()
		defer mu.Unlock()
		h := last
		last = nil
		return h
	}
}

// Every chat completion goes upstream with the headers it went with
// before outHeader set Content-Type and Accept itself (refUpstreamHeader),
// whatever the caller sends (random header sets: hop-by-hop headers, its
// own credentials, Content-Type and Accept of any value or missing, other
// headers, several values), streamed or not, with and without an upstream
// key. A plain JSON call goes with the gateway's own map (no copy by the
// transport: its Content-Type value is outHeader's shared one).
func TestOutHeaderMatchesTheSlowPath(t *testing.T) {
	const vkey = "tw-internal-test-key-0123456789abcdef"
	names := []string{"Content-Type", "Accept", "Accept-Encoding", "Api-Key", "Cookie", "Connection", "Te", "Trailer",
		"Upgrade", "Proxy-Authorization", "X-Run-Id", "User-Agent", "Openai-Organization", "Openai-Project", "X-Custom", "X-Stainless-Lang", "Cache-Control", "x_underscore"}
	values := []string{"application/json", "application/json; charset=utf-8", "text/event-stream", "*/*", "text/plain", "gzip", "a", "b c", "Keep-Alive"}
	for _, key := range []string{"", "sk-internal-upstream-key-00112233"} {
		url, got := headerGateway(t, key)
		client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		rng := rand.New(rand.NewPCG(1, uint64(len(key))))
		for i := range 120 {
			stream := i%3 == 0
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello ` + strconv.Itoa(i) + `"}]`
			if stream {
				body += `,"stream":true`
			}
			body += "}"
			req, err := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for range rng.IntN(6) {
				n := names[rng.IntN(len(names))]
				if n == "Connection" || n == "Upgrade" || n == "Te" || n == "Trailer" || n == "X-Run-Id" {
					continue // they change the request itself: covered by the hop list
				}
				for range 1 + rng.IntN(2) {
					req.Header.Add(n, values[rng.IntN(len(values))])
				}
			}
			req.Header.Set("Authorization", "Bearer "+vkey)
			// The server's view of the request's headers: what the
			// gateway's handler gets.
			var wire bytes.Buffer
			view := req.Clone(context.Background())
			view.Body = io.NopCloser(strings.NewReader(body))
			if err := view.Write(&wire); err != nil {
				t.Fatal(err)
			}
			in, err := http.ReadRequest(bufio.NewReader(&wire))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, b)
			}
			h := got()
			want := refUpstreamHeader(in.Header, key, stream)
			if !maps.EqualFunc(h, want, slices.Equal) {
				t.Fatalf("request %d (stream %v, caller %v): upstream got\n%v\nwant\n%v", i, stream, in.Header, h, want)
			}
			if !stream && &h["Content-Type"][0] != &jsonValue[0] {
				t.Fatalf("request %d: the transport copied the gateway's header map", i)
			}
		}
		client.CloseIdleConnections()
	}
}

// newChat builds the request http.NewRequestWithContext builds for the
// same URL, context and body: same fields, same bytes on the wire.
func TestNewChatMatchesNewRequest(t *testing.T) {
	type ctxKey struct{}
	for _, base := range []string{"http://127.0.0.1:8080/v1", "http://upstream/v1", "http://upstream:80/openai/v1", "http://[::1]:9000/v1", "http://h.example/v1?api-version=2024-01-01"} {
		up := &upstream{chat: base + "/chat/completions"}
		var err error
		if up.chatReq, err = http.NewRequest(http.MethodPost, up.chat, nil); err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{"", "{}", `{"model":"m","messages":[]}`} {
			ctx := context.WithValue(context.Background(), ctxKey{}, base)
			hdr := http.Header{"Content-Type": {"application/json"}, "X-A": {"1", "2"}}
			fast := up.newChat(ctx, io.NopCloser(strings.NewReader(body)))
			slow, err := http.NewRequestWithContext(ctx, http.MethodPost, up.chat, io.NopCloser(strings.NewReader(body)))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*http.Request{fast, slow} {
				r.Header, r.ContentLength = hdr, int64(len(body))
			}
			if fast.Context() != ctx || fast.Method != slow.Method || fast.URL.String() != slow.URL.String() || fast.Host != slow.Host ||
				fast.Proto != slow.Proto || fast.ProtoMajor != slow.ProtoMajor || fast.ProtoMinor != slow.ProtoMinor ||
				(fast.GetBody == nil) != (slow.GetBody == nil) || fast.Close != slow.Close || len(fast.TransferEncoding) != len(slow.TransferEncoding) {
				t.Fatalf("%s: newChat %+v, NewRequestWithContext %+v", base, fast, slow)
			}
			var a, b bytes.Buffer
			if err := fast.Write(&a); err != nil {
				t.Fatal(err)
			}
			if err := slow.Write(&b); err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Fatalf("%s: newChat writes\n%q\nNewRequestWithContext\n%q", base, a.String(), b.String())
			}
		}
		if up.chatReq.Header == nil || len(up.chatReq.Header) != 0 || up.chatReq.Body != nil {
			t.Fatalf("%s: newChat changed its template: %+v", base, up.chatReq)
		}
	}
}

// contentLength is the header value strconv makes of the length, and the
// response's own slice when that is the same.
func TestContentLengthMatchesFormatInt(t *testing.T) {
	for _, n := range []int64{0, 1, 9, 10, 233, 1 << 20, 1<<63 - 1} {
		for _, have := range [][]string{nil, {}, {strconv.FormatInt(n, 10)}, {"0" + strconv.FormatInt(n, 10)}, {strconv.FormatInt(n+1, 10)}, {"+" + strconv.FormatInt(n, 10)}, {strconv.FormatInt(n, 10), "1"}} {
			resp := &http.Response{ContentLength: n, Header: http.Header{}}
			if have != nil {
				resp.Header["Content-Length"] = have
			}
			got := contentLength(resp)
			if len(got) != 1 || got[0] != strconv.FormatInt(n, 10) {
				t.Fatalf("n %d, header %q: got %q", n, have, got)
			}
			if shared := len(have) == 1 && have[0] == got[0]; shared != (len(have) > 0 && &have[0] == &got[0]) {
				t.Fatalf("n %d, header %q: shared %v", n, have, shared)
			}
		}
	}
}
