package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
)

// largeFileOrg is an upstream of a large organisation's files: n files
// made outside the gateway (a realistic file object, its filename 300
// characters: some 480 bytes each), listed as OpenAI lists files — 10,000
// a page when the request gives no limit, 10,000 at most.
func largeFileOrg(n int) (*objectStore, http.Handler) {
	up := newObjectStore()
	name := strings.Repeat("quarterly-sales-overview-", 12)
	for i := range n {
		up.add(0, fmt.Sprintf(`,"bytes":%d,"filename":"%s%05d.pdf","purpose":"assistants","status":"processed","expires_at":null,"status_details":null`, 120000+i, name, i))
	}
	return up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/files" {
			q := r.URL.Query()
			if !q.Has("limit") {
				q.Set("limit", "10000")
				r.URL.RawQuery = q.Encode()
			}
		}
		up.ServeHTTP(w, r)
	})
}

// TestGatewayListsFilesOfALargeOrganisation: a team's files among 25,000
// an organisation made outside the gateway: go-openai's ListFiles (no
// limit: the upstream's page of 10,000 files, some 4.8 MB) and openai-go's
// auto-paging list (limit 100, then 10,000) give exactly the team's
// files. Before, the gateway read an upstream page into memory up to
// 4 MiB: a page of 10,000 such files was over it, and the list failed with
// a 502 ("not a list page").
//
// What is checked is what the lists hold, not how fast they are read
// (TestGatewayListOfFewObjectsAmongManyIsBounded checks the bound, in a
// synctest bubble): devops' timeouts.total, which bounds a list call, is
// an hour, so that a slow or loaded machine reads the 490 upstream pages
// of openai-go's list by two whole. Under the default 60s of wall-clock
// time, a loaded CI machine found none of devops' files in time and the
// test failed with the gateway's 504 list_timeout.
func TestGatewayListsFilesOfALargeOrganisation(t *testing.T) {
	up, h := largeFileOrg(25_000)
	hs := httptest.NewServer(h)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	pols := maps.Clone(isolatedPolicies)
	pols["devops.yaml"] = "version: 1\nname: devops\ntimeouts: {total: 1h}\n"
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, ""))
	dev := newObjectAPI(t, e.url, devopsKey, "devops")
	var mine []string
	for range 2 {
		mine = append(mine, dev.create(0))
		up.mu.Lock()
		for range 12_000 {
			up.add(0, `,"bytes":1,"filename":"`+strings.Repeat("x", 400)+`.txt","purpose":"assistants"`)
		}
		up.mu.Unlock()
	}
	mine = append(mine, dev.create(0))
	ctx := context.Background()
	goDev := goopenai.NewClientWithConfig(func() goopenai.ClientConfig {
		c := goopenai.DefaultConfig(devopsKey)
		c.BaseURL = e.url + "/v1"
		return c
	}())
	files, err := goDev.ListFiles(ctx)
	if err != nil {
		t.Fatalf("go-openai lists devops' files among 49,000: %v", err)
	}
	var got []string
	for _, f := range files.Files {
		got = append(got, f.ID)
	}
	if !slices.Equal(got, mine) {
		t.Errorf("go-openai lists devops' files: %q, want %q", got, mine)
	}
	got = nil
	iter := dev.c.Files.ListAutoPaging(ctx, openai.FileListParams{Limit: openai.Int(2)})
	for iter.Next() {
		got = append(got, iter.Current().ID)
	}
	if err := iter.Err(); err != nil || !slices.Equal(got, mine) {
		t.Errorf("openai-go lists devops' files, by two: %q %v, want %q", got, err, mine)
	}
	if got := dev.list(0, 10000, false); !slices.Equal(got, mine) {
		t.Errorf("devops lists its files, limit 10,000: %q, want %q", got, mine)
	}
}

// handlerTransport serves requests with h in the caller's goroutine (an
// upstream inside a synctest bubble), each after latency.
type handlerTransport struct {
	h       http.Handler
	latency time.Duration
	mu      sync.Mutex
	lists   int
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		t.mu.Lock()
		t.lists++
		t.mu.Unlock()
	}
	select {
	case <-time.After(t.latency):
	case <-r.Context().Done():
		return nil, context.Cause(r.Context())
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

// TestGatewayListOfFewObjectsAmongManyIsBounded: a team whose batches are
// few among 65,500 others' (upstream pages of 100 taking a second each)
// lists them through openai-go: each list call is answered within the
// team's total timeout (20s) — a page of the team's batches found so far
// with has_more true, whose cursor continues the list, or, when none was
// found in time, a 504 list_timeout, which asked again goes on from where
// the reading stopped; never an empty page claiming has_more (which
// openai-go's paging reads as the list's end) nor has_more false; paged
// to its end, the list is exactly the team's. Before, one list call read
// up to 1,000 pages (here 600 s) whatever the team's timeouts.
func TestGatewayListOfFewObjectsAmongManyIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t.Setenv(upstreamEnv, upstreamKey)
		up := newObjectStore()
		base := &handlerTransport{h: up, latency: time.Second}
		pols := map[string]string{"default.yaml": "version: 1\nname: default\n", "devops.yaml": "version: 1\nname: devops\ntimeouts: {total: 20s}\n", "payments.yaml": "version: 1\nname: payments\n"}
		cfgPath := writeFiles(t, "http://upstream/v1", pols, "")
		logs := &syncBuffer{}
		srv, tr, _ := servePipe(t, cfgPath, base, slog.New(slog.NewTextHandler(logs, nil)))
		defer func() { t.Log(logs.String()) }()
		defer srv.Close()
		c := openai.NewClient(option.WithAPIKey(devopsKey), option.WithBaseURL("http://gateway/v1/"), option.WithMaxRetries(0),
			option.WithHTTPClient(&http.Client{Transport: tr}))
		ctx := context.Background()
		create := func() string {
			var out struct {
				ID string `json:"id"`
			}
			if err := c.Post(ctx, "batches", map[string]any{}, &out); err != nil {
				t.Fatal(err)
			}
			return out.ID
		}
		others := func(n int) {
			up.mu.Lock()
			for range n {
				up.add(2, "")
			}
			up.mu.Unlock()
		}
		var mine []string
		others(500)
		mine = append(mine, create())
		others(5000)
		mine = append(mine, create())
		others(60_000)
		mine = append(mine, create())
		// The list, page by page as openai-go's paging reads it, a 504
		// list_timeout asked again as it says.
		var got []string
		params := openai.BatchListParams{Limit: openai.Int(5)}
		timeouts := 0
		for calls := 0; ; calls++ {
			if calls > 200 {
				t.Fatalf("devops' list: more than 200 calls, got %q", got)
			}
			start := time.Now()
			page, err := c.Batches.List(ctx, params)
			if took := time.Since(start); took > 21*time.Second {
				t.Errorf("a list call took %v, want at most the team's total timeout (20s)", took)
			}
			var ae *openai.Error
			if errors.As(err, &ae) && ae.StatusCode == http.StatusGatewayTimeout && ae.Code == "list_timeout" {
				timeouts++
				continue
			}
			if err != nil {
				t.Fatalf("devops lists its batches: %v", err)
			}
			if page.HasMore && len(page.Data) == 0 {
				t.Fatalf("an empty page with has_more: openai-go's paging ends there (got %q)", got)
			}
			for _, b := range page.Data {
				got = append(got, b.ID)
			}
			if !page.HasMore {
				break
			}
			params.After = openai.String(page.Data[len(page.Data)-1].ID)
		}
		if !slices.Equal(got, mine) {
			t.Errorf("devops lists its batches: %q, want %q", got, mine)
		}
		if timeouts == 0 {
			t.Errorf("no list call passed its bound: the test reads no bound")
		}
	})
}
