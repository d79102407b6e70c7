package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
)

// TestGatewayKeepsAStoredChatCompletionOfAnyWrittenStoreToItsTeam: a chat
// call's body that says store true in any way JSON allows — spaces around
// the colon, the name written with \u escapes ("st\u006fre"), a repeated
// member — stores the completion upstream (the scripted upstream decodes
// the body as OpenAI's JSON parser does), so the completion is its team's:
// another team's retrieval is the 404, without the upstream. Before, the
// gateway looked for the bytes "store" only: the escaped name's completion
// was no team's, and payments read devops' stored completion.
func TestGatewayKeepsAStoredChatCompletionOfAnyWrittenStoreToItsTeam(t *testing.T) {
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	pay := newObjectAPI(t, e.url, paymentsKey, "payments")
	for _, store := range []string{`"store" : true`, `"st\u006fre":true`, `"\u0073\u0074\u006f\u0072\u0065":true`, `"store":false,"stor\u0065":true`} {
		for _, stream := range []bool{false, true} {
			body := `{"model":"gpt-4o-mini",` + store + `,"messages":[{"role":"user","content":"devops: secret"}]`
			if stream {
				body += `,"stream":true`
			}
			body += "}"
			req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+devopsKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var id string
			if stream {
				_, rest, _ := strings.Cut(string(b), `"id":"`)
				id, _, _ = strings.Cut(rest, `"`)
			} else {
				var c struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(b, &c)
				id = c.ID
			}
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(id, "chatcmpl-") || strings.Contains(id, "unstored") {
				t.Fatalf("%s (stream %v): %d %s, want a stored completion", store, stream, resp.StatusCode, b)
			}
			before := up.uses()
			var out json.RawMessage
			err = pay.c.Get(context.Background(), "chat/completions/"+id, nil, &out)
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || up.uses() != before {
				t.Errorf("%s (stream %v): payments' retrieval of devops' stored completion %s: %s %v (%d upstream uses), want the 404 without the upstream",
					store, stream, id, out, err, up.uses()-before)
			}
		}
	}
}

// TestGatewayListOfFewOwnObjectsAsksTheUpstreamFewPages: a team whose one
// batch comes after 250 it did not make lists its batches a page of one
// at a time: the gateway reads the upstream's pages 100 objects at a
// time (its largest), not the client's page size, so the list costs 3
// upstream requests, not 251 (one per object, each a round trip, for a
// page of one batch).
func TestGatewayListOfFewOwnObjectsAsksTheUpstreamFewPages(t *testing.T) {
	up := newObjectStore()
	var mu sync.Mutex
	lists := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/batches" {
			mu.Lock()
			lists++
			mu.Unlock()
		}
		up.ServeHTTP(w, r)
	}))
	defer hs.Close()
	up.mu.Lock()
	for range 250 {
		up.add(2, "") // made outside the gateway: no team's
	}
	up.mu.Unlock()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	dev := newObjectAPI(t, e.url, devopsKey, "devops")
	mine := dev.create(2)
	for _, limit := range []int{1, 5, 0} {
		mu.Lock()
		lists = 0
		mu.Unlock()
		if got := dev.list(2, limit, false); !slices.Equal(got, []string{mine}) {
			t.Errorf("limit %d: devops lists %v, want [%s]", limit, got, mine)
		}
		mu.Lock()
		n := lists
		mu.Unlock()
		if n > 3 {
			t.Errorf("limit %d: a list of one batch among 251 asked the upstream %d pages, want at most 3", limit, n)
		}
	}
}

// TestGatewayObjectOwnersInRedisDoNotExpire: with Redis, the record of the
// team that made a file (which lives upstream until it is deleted) has no
// expiry — after 30 days it would be no team's and any team's to read —
// and a file its team deleted is forgotten.
func TestGatewayObjectOwnersInRedisDoNotExpire(t *testing.T) {
	rdb, prefix := testRedis(t)
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\n"))
	dev := newObjectAPI(t, e.url, devopsKey, "devops")
	kept, deleted := dev.create(0), dev.create(0)
	ctx := context.Background()
	if ttl, err := rdb.TTL(ctx, prefix+":objects:owner:"+kept).Result(); err != nil || ttl != -1 {
		t.Errorf("the record of devops' file %s expires in %v (%v), want never (-1)", kept, ttl, err)
	}
	if err := dev.c.Delete(ctx, "files/"+deleted, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, prefix+":objects:owner:"+deleted).Result(); err != nil || n != 0 {
		t.Errorf("the record of devops' deleted file %s: %d keys (%v), want none", deleted, n, err)
	}
}
