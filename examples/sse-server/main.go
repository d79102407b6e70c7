// Command sse-server streams an LLM's answer to web clients as
// Server-Sent Events, through a tokenwise chain with a fallback
// (gpt-4o → gpt-4o-mini), retries, a circuit breaker and timeouts.
//
//	go run ./examples/sse-server
//	curl -N 'http://127.0.0.1:8080/chat?q=How+full+is+the+disk%3F'
//
// It listens on loopback (127.0.0.1:8080) unless -addr says otherwise
// (-addr :8080 listens on every interface) and prints the URL to try,
// built from the address it actually listens on (-addr 127.0.0.1:0 picks a
// free port).
//
// By default it answers from an embedded scripted OpenAI-compatible server
// (no key, no network), whose gpt-4o is down, so every answer shows the
// fallback at work. With OPENAI_API_KEY set (and optionally
// OPENAI_BASE_URL) it talks to the real endpoint.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/sse"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback by default; :8080 listens on every interface)")
	flag.Parse()
	h, err := newHandler(os.Getenv("OPENAI_API_KEY"), os.Getenv("OPENAI_BASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sse-server: listening on %s; try curl -N '%s'", ln.Addr(), chatURL(ln.Addr()))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// chatURL is a URL of the chat route that works from this machine for a
// server listening on a: an unspecified address (every interface) is
// reached through localhost.
func chatURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		host, port = "localhost", "8080"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/chat?q=" + url.QueryEscape("How full is the disk?")
}

// policy is the resilience part of a team policy.
func policy() *policies.Policy {
	p := policies.Default()
	p.Timeouts = policies.Timeouts{Call: policies.Duration(30 * time.Second),
		FirstToken: policies.Duration(5 * time.Second), Idle: policies.Duration(10 * time.Second)}
	p.Limits.RunTimeout = policies.Duration(5 * time.Minute)
	p.Fallback = policies.Fallback{
		Models:  []string{"gpt-4o-mini"},
		Retry:   policies.Retry{MaxAttempts: 2, BaseDelay: policies.Duration(200 * time.Millisecond), MaxTotalWait: policies.Duration(2 * time.Second)},
		Breaker: policies.Breaker{ConsecutiveFailures: 3, OpenFor: policies.Duration(30 * time.Second)},
	}
	return p
}

// script is the embedded provider: gpt-4o is down, gpt-4o-mini streams.
func script() *openaitest.Server {
	srv := openaitest.New()
	srv.On(openaitest.Model("gpt-4o")).Reply(openaitest.Unavailable())
	srv.On().Reply(openaitest.Reply{
		Content:      "The disk is 95% full; /var/log holds 20GB of old logs. Cleaning them frees the space.",
		ChunkSize:    6,
		Latency:      200 * time.Millisecond,
		ChunkLatency: 30 * time.Millisecond,
	})
	return srv
}

// newHandler returns the server's routes: GET /chat?q=... streams the
// answer to q.
func newHandler(apiKey, baseURL string) (http.Handler, error) {
	chain, err := llmwrap.Build(policy())
	if err != nil {
		return nil, err
	}
	var provider middleware.Handler
	if apiKey != "" {
		if baseURL == "" {
			baseURL = "https://api.openai.com/v1"
		}
		provider = twopenai.NewProvider(baseURL, apiKey)
	} else {
		fake := script()
		provider = twopenai.NewProvider(fake.URL, "sk-embedded", twopenai.WithBaseTransport(fake.Transport()))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /chat", eachRequestARun(sse.CallHandler(chain(provider), decode)))
	return mux, nil
}

// eachRequestARun serves every request in a run of its own
// (middleware.StartRun), so that the policy's run limits (limits.run_timeout,
// max_calls) bound it: outside a run they do not apply.
func eachRequestARun(h http.Handler) http.Handler {
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, _ := middleware.StartRun(r.Context(), fmt.Sprintf("chat-%d", n.Add(1)))
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

func decode(r *http.Request) (*middleware.Request, error) {
	q := r.URL.Query().Get("q")
	if q == "" {
		return nil, errors.New("missing query parameter q")
	}
	if len(q) > 4000 {
		return nil, fmt.Errorf("question too long (%d bytes)", len(q))
	}
	return &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a concise SRE assistant."},
		{Role: middleware.RoleUser, Content: q},
	}}, nil
}
