package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countedResponses answers every Responses call with one completed
// answer, counting the calls.
type countedResponses struct{ calls *atomic.Int64 }

func (rt countedResponses) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	rt.calls.Add(1)
	body := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini",` +
		`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
		`"usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12}}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// A reload that shortens the team's cache.ttl holds the Responses answers
// the gateway kept before it to the new TTL, as the chat cache does
// (TestReloadToAShorterTTLHolds): an answer older than the new TTL is not
// served; one younger than it still is.
// With Redis (the gateway's Redis store), the same.
func TestGatewayResponsesReloadToAShorterTTLHolds(t *testing.T) {
	t.Run("memory", func(t *testing.T) { responsesReloadToAShorterTTL(t, "") })
	t.Run("redis", func(t *testing.T) {
		_, prefix := testRedis(t)
		responsesReloadToAShorterTTL(t, fmt.Sprintf("redis: {addr: %q, prefix: %s}\n", redisAddr(), prefix))
	})
}

func responsesReloadToAShorterTTL(t *testing.T, extra string) {
	t.Setenv(upstreamEnv, upstreamKey)
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		pol := func(ttl string) string { return "version: 1\nname: devops\ncache: {enabled: true, ttl: " + ttl + "}\n" }
		cfgPath := writeFiles(t, "http://upstream/v1", map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": pol("24h")}, extra)
		srv, tr, served := servePipe(t, cfgPath, countedResponses{&calls}, slog.New(slog.DiscardHandler))
		defer func() { _ = srv.Close(); <-served }()
		ask := func(want int64, when string) {
			t.Helper()
			conn, err := tr.DialContext(context.Background(), "tcp", "gateway:80")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			body := `{"model":"gpt-4o-mini","input":"Check the disks."}`
			if _, err := io.WriteString(conn, requestHead("/v1/responses", len(body))+body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", when, resp.StatusCode)
			}
			if n := calls.Load(); n != want {
				t.Fatalf("%s: %d upstream calls, want %d", when, n, want)
			}
		}
		ask(1, "under ttl: 24h")
		ask(1, "again under ttl: 24h (a hit)")
		if err := os.WriteFile(filepath.Join(filepath.Dir(cfgPath), "policies", "devops.yaml"), []byte(pol("1m")), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := srv.Reload(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second) // fake time
		ask(1, "a 30-second-old answer under ttl: 1m (a hit)")
		time.Sleep(90 * time.Second)
		ask(2, "a two-minute-old answer under ttl: 1m (a miss)")
		ask(2, "the answer kept again (a hit)")
	})
}
