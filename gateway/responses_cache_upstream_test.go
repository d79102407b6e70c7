package gateway_test

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"
)

// TestResponsesCacheKeysOnTheUpstreamItself: two gateways sharing a
// Redis cache whose upstream has the same name but is another server
// (another base URL: another provider, another Azure deployment) never
// share a Responses answer, as their chat calls never do (the chat cache
// keys on the endpoint and account): the second gateway's call reaches
// its own upstream. The same gateway file twice does share.
func TestResponsesCacheKeysOnTheUpstreamItself(t *testing.T) {
	_, prefix := testRedis(t)
	var calls1, calls2 atomic.Int64
	up1, up2 := numberedResponses(t, &calls1), numberedResponses(t, &calls2)
	pols := map[string]string{
		"default.yaml": "version: 1\nname: default\n",
		"devops.yaml":  "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, store: redis}\n",
	}
	t.Setenv(upstreamEnv, upstreamKey)
	redis := fmt.Sprintf("redis: {addr: %q, prefix: %s}\n", redisAddr(), prefix)
	a := serveFile(t, writeFiles(t, up1.URL+"/v1", pols, redis))
	a2 := serveFile(t, writeFiles(t, up1.URL+"/v1", pols, redis))
	b := serveFile(t, writeFiles(t, up2.URL+"/v1", pols, redis))
	body := `{"model":"gpt-4o-mini","input":"Check the disks of web-1."}`
	for _, g := range []*env{a, a2, b} {
		resp := g.do(t, "POST", "/v1/responses", devopsKey, body)
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if calls1.Load() != 1 {
		t.Errorf("the first upstream got %d calls from two gateways of one file, want 1 (the second a hit)", calls1.Load())
	}
	if calls2.Load() != 1 {
		t.Errorf("another upstream of the same name got %d calls, want 1: it was served the first upstream's answer", calls2.Load())
	}
}
