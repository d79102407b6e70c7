package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tokenwise/tokenwise/gateway"
)

// storedResponses is an upstream that stores the responses it creates, as
// OpenAI does (store defaults to true): it answers POST /v1/responses
// (JSON, or a stream of events; a previous_response_id it does not know
// is a 404), and a stored response's retrieval, input_items, cancel and
// deletion. Every request for a stored response is counted in used.
type storedResponses struct {
	mu     sync.Mutex
	n      int
	inputs map[string]string // id -> the input it was created with
	used   int
}

func (u *storedResponses) object(id, status string) string {
	return `{"id":"` + id + `","object":"response","created_at":1,"status":"` + status + `","model":"gpt-4o-mini","output":[{"type":"message","id":"msg_` + id + `","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}],` +
		`"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}}`
}

func (u *storedResponses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	notFound := func(id string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"Response with id '`+id+`' not found.","type":"invalid_request_error","param":null,"code":null}}`)
	}
	rest := strings.TrimPrefix(r.URL.Path, "/v1/responses")
	if r.Method == http.MethodPost && rest == "" {
		var req struct {
			Input    string `json:"input"`
			Stream   bool   `json:"stream"`
			Previous string `json:"previous_response_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Previous != "" {
			u.used++
			if _, ok := u.inputs[req.Previous]; !ok {
				notFound(req.Previous)
				return
			}
		}
		u.n++
		id := fmt.Sprintf("resp_stored_%d", u.n)
		u.inputs[id] = req.Input
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, u.object(id, "completed"))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":%s}\n\n", strings.Replace(u.object(id, "in_progress"), `"usage":{`, `"x":{`, 1))
		fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"ok\"}\n\n")
		fmt.Fprintf(w, "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":%s}\n\n", u.object(id, "completed"))
		return
	}
	id, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	input, ok := u.inputs[id]
	u.used++
	if !ok {
		notFound(id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && sub == "":
		_, _ = io.WriteString(w, u.object(id, "completed"))
	case r.Method == http.MethodGet && sub == "input_items":
		b, _ := json.Marshal(input)
		_, _ = io.WriteString(w, `{"object":"list","data":[{"type":"message","id":"msg_in","status":"completed","role":"user","content":[{"type":"input_text","text":`+string(b)+`}]}],"first_id":"msg_in","last_id":"msg_in","has_more":false}`)
	case r.Method == http.MethodPost && sub == "cancel":
		_, _ = io.WriteString(w, u.object(id, "cancelled"))
	case r.Method == http.MethodDelete && sub == "":
		delete(u.inputs, id)
		_, _ = io.WriteString(w, `{"id":"`+id+`","object":"response.deleted","deleted":true}`)
	default:
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

func (u *storedResponses) uses() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.used
}

// ownerPolicies are two teams that may both spend.
var ownerPolicies = map[string]string{
	"default.yaml":  "version: 1\nname: default\n",
	"devops.yaml":   "version: 1\nname: devops\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
	"payments.yaml": "version: 1\nname: payments\nbudget:\n  team: {period: monthly, max_usd: 10}\n",
}

func ownerClient(url, key string) openai.Client {
	return openai.NewClient(option.WithAPIKey(key), option.WithBaseURL(url+"/v1/"), option.WithMaxRetries(0))
}

// checkIsolated checks, through the official openai-go client, that the
// responses devops created through a (one by a JSON answer, one by a
// stream) are refused to payments through b — retrieved, their input
// items listed, cancelled, deleted, continued by previous_response_id —
// with OpenAI's 404 for an id it does not know, none of them reaching the
// upstream; that devops itself uses them through b; that an id the
// gateway never saw created passes; and that payments' own response is
// refused to devops.
func checkIsolated(t *testing.T, up *storedResponses, a, b string) {
	t.Helper()
	ctx := context.Background()
	devA, devB, payB := ownerClient(a, devopsKey), ownerClient(b, devopsKey), ownerClient(b, paymentsKey)
	r1, err := devA.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("devops: the root password is hunter2")}})
	if err != nil {
		t.Fatal(err)
	}
	st := devA.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("devops: streamed secret")}})
	var r2 string
	for st.Next() {
		if ev := st.Current(); ev.Type == "response.completed" {
			r2 = ev.Response.ID
		}
	}
	if err := st.Err(); err != nil || r2 == "" {
		t.Fatalf("devops' stream: %q %v", r2, err)
	}
	refused := func(what, id string, err error) {
		t.Helper()
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Type != "invalid_request_error" || ae.Code != "" ||
			ae.Message != "Response with id '"+id+"' not found." {
			t.Errorf("payments %s devops' %s: %v, want OpenAI's 404 for an unknown id", what, id, err)
		}
	}
	before := up.uses()
	for _, id := range []string{r1.ID, r2} {
		_, err := payB.Responses.Get(ctx, id, responses.ResponseGetParams{})
		refused("retrieves", id, err)
		_, err = payB.Responses.InputItems.List(ctx, id, responses.InputItemListParams{})
		refused("lists the input items of", id, err)
		_, err = payB.Responses.Cancel(ctx, id)
		refused("cancels", id, err)
		_, err = payB.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", PreviousResponseID: openai.String(id),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what did they say?")}})
		refused("continues", id, err)
		refused("deletes", id, payB.Responses.Delete(ctx, id))
		// Through the gateway's path without /v1 too.
		req, _ := http.NewRequest(http.MethodGet, b+"/responses/"+id+"/input_items", nil)
		req.Header.Set("Authorization", "Bearer "+paymentsKey)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("payments GET /responses/%s/input_items: %v %v", id, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	if n := up.uses() - before; n != 0 {
		t.Errorf("the upstream got %d of payments' requests for devops' responses, want none", n)
	}
	// devops uses its own, through either replica.
	if got, err := devB.Responses.Get(ctx, r2, responses.ResponseGetParams{}); err != nil || got.ID != r2 {
		t.Errorf("devops retrieves its streamed response: %v %v", got, err)
	}
	page, err := devB.Responses.InputItems.List(ctx, r1.ID, responses.InputItemListParams{})
	if err != nil || len(page.Data) != 1 || !strings.Contains(page.Data[0].RawJSON(), "hunter2") {
		t.Errorf("devops lists its input items: %v %v", page, err)
	}
	if _, err := devB.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", PreviousResponseID: openai.String(r1.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and then?")}}); err != nil {
		t.Errorf("devops continues its response: %v", err)
	}
	// An id the gateway never saw created passes as before.
	up.mu.Lock()
	up.inputs["resp_outside"] = "made without the gateway"
	up.mu.Unlock()
	if got, err := payB.Responses.Get(ctx, "resp_outside", responses.ResponseGetParams{}); err != nil || got.ID != "resp_outside" {
		t.Errorf("payments retrieves a response created outside the gateway: %v %v", got, err)
	}
	// payments' own is refused to devops.
	r3, err := payB.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("payments: card data")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payB.Responses.Get(ctx, r3.ID, responses.ResponseGetParams{}); err != nil {
		t.Errorf("payments retrieves its response: %v", err)
	}
	_, err = devA.Responses.Get(ctx, r3.ID, responses.ResponseGetParams{})
	refused("(as devops) retrieves", r3.ID, err)
	if err := devB.Responses.Delete(ctx, r1.ID); err != nil {
		t.Errorf("devops deletes its response: %v", err)
	}
}

// TestGatewayKeepsEachTeamsResponsesToItself: every team's calls go
// upstream with the one upstream key, so a stored response one team
// created through the gateway could be retrieved, its input listed,
// cancelled, deleted or continued (previous_response_id: the model reads
// the other team's conversation) with another team's key by whoever knew
// its id. Now the gateway records the team that created each response it
// passes and answers another team OpenAI's 404.
func TestGatewayKeepsEachTeamsResponsesToItself(t *testing.T) {
	up := &storedResponses{inputs: map[string]string{}}
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", ownerPolicies, ""))
	checkIsolated(t, up, e.url, e.url)
}

// TestGatewayKeepsEachTeamsResponsesToItselfOverReplicas: with Redis, a
// response created through one replica is refused to another team
// through the other.
func TestGatewayKeepsEachTeamsResponsesToItselfOverReplicas(t *testing.T) {
	_, prefix := testRedis(t)
	up := &storedResponses{inputs: map[string]string{}}
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, hs.URL+"/v1", ownerPolicies, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\n")
	a, b := serveFile(t, cfgPath), serveFile(t, cfgPath)
	checkIsolated(t, up, a.url, b.url)
}

// TestGatewayForgetsTheOldestResponseOwners: in memory, the gateway keeps
// the creating team of a bounded number of responses, forgetting the
// oldest first: a forgotten id passes as one never seen.
func TestGatewayForgetsTheOldestResponseOwners(t *testing.T) {
	defer gateway.SetMaxResponseOwners(2)()
	up := &storedResponses{inputs: map[string]string{}}
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", ownerPolicies, ""))
	ctx := context.Background()
	dev, pay := ownerClient(e.url, devopsKey), ownerClient(e.url, paymentsKey)
	var ids []string
	for i := range 3 {
		r, err := dev.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(fmt.Sprint("turn ", i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if _, err := pay.Responses.Get(ctx, ids[0], responses.ResponseGetParams{}); err != nil {
		t.Errorf("the oldest id, forgotten: %v, want it passed", err)
	}
	for _, id := range ids[1:] {
		if _, err := pay.Responses.Get(ctx, id, responses.ResponseGetParams{}); err == nil {
			t.Errorf("%s, kept: passed to payments", id)
		}
	}
}

// TestGatewayLetsATeamUseTheResponseItsCacheHitGave: under a global cache,
// a team's call answered from the cache with a response another team
// created is given that response: it may retrieve and continue it, as
// its own, rather than be told the response it was just given is
// unknown.
func TestGatewayLetsATeamUseTheResponseItsCacheHitGave(t *testing.T) {
	up := &storedResponses{inputs: map[string]string{}}
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	pols := map[string]string{
		"default.yaml":  "version: 1\nname: default\n",
		"devops.yaml":   "version: 1\nname: devops\ncache: {enabled: true, ttl: 1h, scope: global}\n",
		"payments.yaml": "version: 1\nname: payments\ncache: {enabled: true, ttl: 1h, scope: global}\n",
	}
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", pols, ""))
	ctx := context.Background()
	dev, pay := ownerClient(e.url, devopsKey), ownerClient(e.url, paymentsKey)
	params := responses.ResponseNewParams{Model: "gpt-4o-mini", Temperature: openai.Float(0),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what is 2+2?")}}
	r1, err := dev.Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	var raw *http.Response
	r2, err := pay.Responses.New(ctx, params, option.WithResponseInto(&raw))
	var hdr http.Header
	if raw != nil {
		hdr = raw.Header
	}
	if err != nil || r2.ID != r1.ID || hdr.Get("X-Tokenwise-Cache") != "hit" {
		t.Fatalf("payments' call: %v, %s, cache %q: want a hit on devops' response", err, r2.ID, hdr.Get("X-Tokenwise-Cache"))
	}
	if _, err := pay.Responses.Get(ctx, r1.ID, responses.ResponseGetParams{}); err != nil {
		t.Errorf("payments retrieves the response its cache hit gave it: %v", err)
	}
	if _, err := pay.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", PreviousResponseID: openai.String(r1.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and 3+3?")}}); err != nil {
		t.Errorf("payments continues the response its cache hit gave it: %v", err)
	}
}
