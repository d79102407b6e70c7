package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestGatewayListSendsNoPageAtItsBound: a list call whose upstream pages
// take a second each, under the team's total timeout of 20s, reads the 20
// pages that end within it and sends no 21st page's request at the
// instant of the bound (the bound's timer fires at that instant too, and
// its goroutine may not have run when the 20th page is read), so each
// round plays the race once more.
func TestGatewayListSendsNoPageAtItsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Setenv(upstreamEnv, upstreamKey)
		up := newObjectStore()
		base := &handlerTransport{h: up, latency: time.Second}
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\ntimeouts: {total: 20s}\n", "payments.yaml": "version: 1\nname: payments\n"}
		cfgPath := writeFiles(t, "http://upstream/v1", pols, "")
		srv, tr, _ := servePipe(t, cfgPath, base, slog.New(slog.DiscardHandler))
		defer srv.Close()
		c := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"), option.WithMaxRetries(0),
			option.WithHTTPClient(&http.Client{Transport: tr}))
		up.mu.Lock()
		for range 60_000 {
			up.add(2, "")
		}
		up.mu.Unlock()
		for round := range 25 {
			base.mu.Lock()
			before := base.lists
			base.mu.Unlock()
			_, _ = c.Batches.List(context.Background(), openai.BatchListParams{Limit: openai.Int(5)})
			base.mu.Lock()
			sent := base.lists - before
			base.mu.Unlock()
			if sent > 20 {
				t.Fatalf("round %d: %d upstream pages asked within a 20s bound of 1s pages, want at most 20: none is sent at the bound", round, sent)
			}
		}
	})
}
