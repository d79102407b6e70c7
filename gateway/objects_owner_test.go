package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	goopenai "github.com/sashabaranov/go-openai"
)

// objectFamilies are the stateful families of OpenAI's API the scripted
// upstream stores, with the prefix of their ids (OpenAI's) and whether a
// GET of the family's path lists them.
var objectFamilies = []struct {
	path, prefix, object string
	list                 bool
	notFound             string // the 404's message, %s the id
}{
	{"/files", "file-", "file", true, "No such File object: %s"},
	{"/uploads", "upload_", "upload", false, "No such Upload object: %s"},
	{"/batches", "batch_", "batch", true, "No batch found with id '%s'."},
	{"/vector_stores", "vs_", "vector_store", true, "No vector store found with id '%s'."},
	{"/conversations", "conv_", "conversation", false, "Conversation with id '%s' not found."},
	{"/chat/completions", "chatcmpl-", "chat.completion", true, "Chat completion with id '%s' not found."},
	{"/containers", "cntr_", "container", true, "Container with id '%s' not found."},
	{"/fine_tuning/jobs", "ftjob-", "fine_tuning.job", true, "Fine-tuning job %s not found."},
	{"/evals", "eval_", "eval", true, "Eval with id '%s' not found."},
	{"/assistants", "asst_", "assistant", true, "No assistant found with id '%s'."},
	{"/threads", "thread_", "thread", false, "No thread found with id '%s'."},
}

// objectStore is an upstream that stores objects of every family, as
// OpenAI does for its one key: created by a POST to the family's path
// (a batch makes its output file, an upload's completion its file, a
// stored chat completion is made by POST /v1/chat/completions with store
// true), listed in the order they were made with after, before and limit,
// and used by id (any method, any path under it; DELETE of the object
// deletes it). Every request for an object by id is counted in used.
type objectStore struct {
	mu    sync.Mutex
	n     int
	objs  map[string]string   // id -> the object's JSON
	order map[string][]string // family path -> its ids in the order they were made
	at    map[string]int      // id -> its index in its family's order
	used  int
}

func newObjectStore() *objectStore {
	return &objectStore{objs: map[string]string{}, order: map[string][]string{}, at: map[string]int{}}
}

// add stores a new object of family fam (with extra JSON members) and
// returns its id.
func (u *objectStore) add(fam int, extra string) string {
	f := objectFamilies[fam]
	u.n++
	id := fmt.Sprintf("%s%03d", f.prefix, u.n)
	u.objs[id] = fmt.Sprintf(`{"id":%q,"object":%q,"created_at":%d%s}`, id, f.object, u.n, extra)
	u.at[id] = len(u.order[f.path])
	u.order[f.path] = append(u.order[f.path], id)
	return id
}

func (u *objectStore) uses() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.used
}

func (u *objectStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	if r.Method == http.MethodPost && path == "/chat/completions" {
		var req struct {
			Store  bool `json:"store"`
			Stream bool `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		var id string
		if req.Store {
			id = u.add(5, `,"model":"gpt-4o-mini","choices":[]`)
		} else {
			u.n++
			id = fmt.Sprintf("chatcmpl-unstored%d", u.n)
		}
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":null}]}\n\n", id)
			fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n", id)
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		fmt.Fprintf(w, `{"id":%q,"object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`, id)
		return
	}
	if r.Method == http.MethodPost && (strings.HasPrefix(path, "/images/") || strings.HasPrefix(path, "/audio/")) {
		u.used++
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"created":1,"data":[],"text":"ok"}`)
		return
	}
	if r.Method == http.MethodPost && path == "/responses" {
		u.used++ // a conversation's use
		u.n++
		fmt.Fprintf(w, `{"id":"resp_%d","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini","output":[],`+
			`"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":15}}`, u.n)
		return
	}
	for fam, f := range objectFamilies {
		rest, ok := strings.CutPrefix(path, f.path)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		rest = strings.Trim(rest, "/")
		switch {
		case rest == "" && r.Method == http.MethodPost:
			extra := ""
			if f.path == "/batches" {
				extra = fmt.Sprintf(`,"output_file_id":%q`, u.add(0, `,"purpose":"batch_output"`))
			}
			_, _ = io.WriteString(w, u.objs[u.add(fam, extra)])
			return
		case rest == "" && r.Method == http.MethodGet && f.list:
			u.list(w, r, f.path)
			return
		case f.path == "/threads" && rest == "runs" && r.Method == http.MethodPost:
			thread := u.add(fam, "")
			u.n++
			fmt.Fprintf(w, `{"id":"run_%d","object":"thread.run","thread_id":%q}`, u.n, thread)
			return
		}
		id, sub, _ := strings.Cut(rest, "/")
		u.used++
		obj, ok := u.objs[id]
		if !ok || !strings.HasPrefix(id, f.prefix) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error","param":null,"code":null}}`, fmt.Sprintf(f.notFound, id))
			return
		}
		switch {
		case r.Method == http.MethodDelete && sub == "":
			delete(u.objs, id)
			fmt.Fprintf(w, `{"id":%q,"object":"%s.deleted","deleted":true}`, id, f.object)
		case f.path == "/uploads" && sub == "complete":
			file := u.add(0, `,"purpose":"assistants"`)
			fmt.Fprintf(w, `{"id":%q,"object":"upload","status":"completed","file":%s}`, id, u.objs[file])
		case r.Method == http.MethodGet && sub != "":
			_, _ = io.WriteString(w, `{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}`)
		default:
			_, _ = io.WriteString(w, obj)
		}
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"error":{"message":"unknown path","type":"invalid_request_error","param":null,"code":null}}`)
}

// list answers a cursor page of family path's objects that exist, in the
// order they were made: after and before are ids (exclusive), limit the
// page's size (default 20). Fine-tuning jobs' pages have no first_id and
// last_id, as OpenAI's.
func (u *objectStore) list(w http.ResponseWriter, r *http.Request, path string) {
	// The page is found from the cursor's index in the family's order
	// (u.at), reading only the objects it walks past: a page costs its
	// size, not the family's (a list of 65,000 objects read page by page
	// under -race took minutes of CPU when each page walked them all).
	order := u.order[path]
	live := func(i int) bool { _, ok := u.objs[order[i]]; return ok }
	// index is the index in order of id, when it is one of the family's
	// objects that exist (a cursor that is none is ignored).
	index := func(id string) (int, bool) {
		i, ok := u.at[id]
		return i, ok && i < len(order) && order[i] == id && live(i)
	}
	q := r.URL.Query()
	limit := 20
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = n
	}
	lo, hi := 0, len(order) // the objects between the cursors: order[lo:hi]
	if a := q.Get("after"); a != "" {
		if i, ok := index(a); ok {
			lo = i + 1
		}
	}
	if b := q.Get("before"); b != "" {
		if i, ok := index(b); ok {
			hi = i
		}
	}
	var page []string
	more := false
	if q.Has("before") && !q.Has("after") {
		// The limit objects nearest before, and whether another is left.
		for i := hi - 1; i >= lo; i-- {
			if !live(i) {
				continue
			}
			if len(page) == limit {
				more = true
				break
			}
			page = append(page, order[i])
		}
		slices.Reverse(page)
	} else {
		for i := lo; i < hi; i++ {
			if !live(i) {
				continue
			}
			if len(page) == limit {
				more = true
				break
			}
			page = append(page, order[i])
		}
	}
	data := make([]json.RawMessage, len(page))
	for i, id := range page {
		data[i] = json.RawMessage(u.objs[id])
	}
	out := map[string]any{"object": "list", "data": data, "has_more": more}
	if path != "/fine_tuning/jobs" {
		out["first_id"], out["last_id"] = nil, nil
		if len(page) > 0 {
			out["first_id"], out["last_id"] = page[0], page[len(page)-1]
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// isolatedPolicies are two teams without budgets: every family's
// creation passes.
var isolatedPolicies = map[string]string{
	"default.yaml":  "version: 1\nname: default\n",
	"devops.yaml":   "version: 1\nname: devops\n",
	"payments.yaml": "version: 1\nname: payments\n",
}

// objectAPI is a team's openai-go client of a gateway, used generically
// (the official client's own request path for any endpoint).
type objectAPI struct {
	t  *testing.T
	c  openai.Client
	as string
}

func newObjectAPI(t *testing.T, url, key, team string) *objectAPI {
	return &objectAPI{t: t, c: ownerClient(url, key), as: team}
}

// create makes an object of family fam and returns its id.
func (a *objectAPI) create(fam int) string {
	a.t.Helper()
	f := objectFamilies[fam]
	var out struct {
		ID string `json:"id"`
	}
	if err := a.c.Post(context.Background(), strings.TrimPrefix(f.path, "/"), map[string]any{"name": a.as}, &out); err != nil || out.ID == "" {
		a.t.Fatalf("%s creates a %s: %q %v", a.as, f.object, out.ID, err)
	}
	return out.ID
}

// list returns the ids of family fam's list, page by page with limit
// (0: none given), following has_more, and checks each page's first_id,
// last_id (when it has them) and size.
func (a *objectAPI) list(fam int, limit int, backward bool) []string {
	a.t.Helper()
	f := objectFamilies[fam]
	var all []string
	cursor := ""
	if backward {
		cursor = f.prefix + "zzz" // past the end: the list's last page
	}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			a.t.Fatalf("%s lists %s: more than 1000 pages", a.as, f.path)
		}
		path := strings.TrimPrefix(f.path, "/") + "?"
		if limit > 0 {
			path += "limit=" + strconv.Itoa(limit) + "&"
		}
		if cursor != "" && backward {
			path += "before=" + cursor
		} else if cursor != "" {
			path += "after=" + cursor
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			HasMore bool             `json:"has_more"`
			FirstID *json.RawMessage `json:"first_id"`
			LastID  *json.RawMessage `json:"last_id"`
		}
		if err := a.c.Get(context.Background(), path, nil, &page); err != nil {
			a.t.Fatalf("%s lists %s: %v", a.as, path, err)
		}
		ids := make([]string, len(page.Data))
		for i, d := range page.Data {
			ids[i] = d.ID
		}
		if limit > 0 && len(ids) > limit {
			a.t.Errorf("%s lists %s: %d objects, over the limit", a.as, path, len(ids))
		}
		if f.path != "/fine_tuning/jobs" {
			want := [2]string{"null", "null"}
			if len(ids) > 0 {
				want = [2]string{strconv.Quote(ids[0]), strconv.Quote(ids[len(ids)-1])}
			}
			if page.FirstID == nil || page.LastID == nil || string(*page.FirstID) != want[0] || string(*page.LastID) != want[1] {
				a.t.Errorf("%s lists %s: first_id, last_id %v %v, want %v", a.as, path, page.FirstID, page.LastID, want)
			}
		}
		if backward {
			all = append(slices.Clone(ids), all...)
		} else {
			all = append(all, ids...)
		}
		if !page.HasMore {
			return all
		}
		if len(ids) == 0 {
			a.t.Fatalf("%s lists %s: has_more with no object to go on from", a.as, path)
		}
		cursor = ids[len(ids)-1]
		if backward {
			cursor = ids[0]
		}
	}
}

// refused checks that err is the 404 OpenAI answers for family fam's id
// it does not know.
func refusedObject(t *testing.T, what string, fam int, id string, err error) {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || ae.Type != "invalid_request_error" ||
		ae.Message != fmt.Sprintf(objectFamilies[fam].notFound, id) {
		t.Errorf("%s %s: %v, want a 404 for an unknown id", what, id, err)
	}
}

// checkObjectsIsolated checks, through openai-go (and go-openai for
// files, batches, vector stores and assistants), for every family, that
// the objects devops made through gateway a are refused to payments
// through b — retrieved, used under them, changed, deleted — with
// OpenAI's 404 for an unknown id, none reaching the upstream; that
// devops uses them through b; that each team's list holds its own
// objects only; and that an object made outside the gateway passes but
// is in no list.
func checkObjectsIsolated(t *testing.T, up *objectStore, a, b string) {
	ctx := context.Background()
	devA, devB, payB := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	goPay := goopenai.NewClientWithConfig(func() goopenai.ClientConfig {
		c := goopenai.DefaultConfig(paymentsKey)
		c.BaseURL = b + "/v1"
		return c
	}())
	for fam, f := range objectFamilies {
		if f.path == "/chat/completions" {
			continue // made by a chat completion: TestGatewayKeepsEachTeamsStoredChatCompletionsToItself
		}
		var devs, pays []string
		for range 3 {
			devs = append(devs, devA.create(fam))
		}
		for range 2 {
			pays = append(pays, payB.create(fam))
		}
		before := up.uses()
		for _, id := range devs {
			p := strings.TrimPrefix(f.path, "/") + "/" + id
			var out json.RawMessage
			refusedObject(t, "payments retrieves "+f.object, fam, id, payB.c.Get(ctx, p, nil, &out))
			refusedObject(t, "payments changes "+f.object, fam, id, payB.c.Post(ctx, p, map[string]any{"metadata": map[string]string{"x": "y"}}, &out))
			refusedObject(t, "payments reads under "+f.object, fam, id, payB.c.Get(ctx, p+"/items", nil, &out))
			refusedObject(t, "payments deletes "+f.object, fam, id, payB.c.Delete(ctx, p, nil, &out))
		}
		// go-openai's typed calls get the same 404.
		var goErr error
		switch f.path {
		case "/files":
			_, goErr = goPay.GetFile(ctx, devs[0])
		case "/batches":
			_, goErr = goPay.RetrieveBatch(ctx, devs[0])
		case "/vector_stores":
			_, goErr = goPay.RetrieveVectorStore(ctx, devs[0])
		case "/assistants":
			_, goErr = goPay.RetrieveAssistant(ctx, devs[0])
		default:
			goErr = &goopenai.APIError{HTTPStatusCode: http.StatusNotFound, Message: fmt.Sprintf(f.notFound, devs[0])}
		}
		var ge *goopenai.APIError
		if !errors.As(goErr, &ge) || ge.HTTPStatusCode != http.StatusNotFound || ge.Message != fmt.Sprintf(f.notFound, devs[0]) {
			t.Errorf("payments retrieves devops' %s through go-openai: %v, want the 404", f.object, goErr)
		}
		if n := up.uses() - before; n != 0 {
			t.Errorf("%s: the upstream got %d of payments' requests for devops' objects, want none", f.path, n)
		}
		// devops uses its own through the other replica.
		var got struct {
			ID string `json:"id"`
		}
		if err := devB.c.Get(ctx, strings.TrimPrefix(f.path, "/")+"/"+devs[1], nil, &got); err != nil || got.ID != devs[1] {
			t.Errorf("devops retrieves its %s %s: %q %v", f.object, devs[1], got.ID, err)
		}
		// An object made outside the gateway passes, and is in no list.
		up.mu.Lock()
		outside := up.add(fam, "")
		up.mu.Unlock()
		if err := payB.c.Get(ctx, strings.TrimPrefix(f.path, "/")+"/"+outside, nil, &got); err != nil || got.ID != outside {
			t.Errorf("payments retrieves a %s made outside the gateway: %q %v", f.object, got.ID, err)
		}
		if f.list {
			if l := devB.list(fam, 0, false); !slices.Equal(l, devs) {
				t.Errorf("devops lists %s: %q, want its own %q", f.path, l, devs)
			}
			if l := payB.list(fam, 1, false); !slices.Equal(l, pays) {
				t.Errorf("payments lists %s a page of one at a time: %q, want its own %q", f.path, l, pays)
			}
			if l := devA.list(fam, 2, true); !slices.Equal(l, devs) {
				t.Errorf("devops lists %s backward, by two: %q, want its own %q", f.path, l, devs)
			}
		}
		if err := devB.c.Delete(ctx, strings.TrimPrefix(f.path, "/")+"/"+devs[0], nil, &got); err != nil {
			t.Errorf("devops deletes its %s: %v", f.object, err)
		}
	}
	// The files a batch and an upload made are their owner's.
	var batch struct {
		ID     string `json:"id"`
		Output string `json:"output_file_id"`
	}
	if err := devA.c.Post(ctx, "batches", map[string]any{}, &batch); err != nil || batch.Output == "" {
		t.Fatalf("devops' batch: %v %v", batch, err)
	}
	if err := devB.c.Get(ctx, "batches/"+batch.ID, nil, &batch); err != nil {
		t.Fatal(err)
	}
	var out json.RawMessage
	refusedObject(t, "payments reads devops' batch output", 0, batch.Output, payB.c.Get(ctx, "files/"+batch.Output+"/content", nil, &out))
	if _, err := goPay.GetFileContent(ctx, batch.Output); err == nil {
		t.Errorf("payments reads devops' batch output through go-openai: passed")
	}
	if err := devA.c.Get(ctx, "files/"+batch.Output, nil, &out); err != nil {
		t.Errorf("devops reads its batch's output: %v", err)
	}
	up2, err := devA.c.Uploads.New(ctx, openai.UploadNewParams{Bytes: 3, Filename: "a.txt", MimeType: "text/plain", Purpose: openai.FilePurposeAssistants})
	if err != nil {
		t.Fatal(err)
	}
	done, err := devA.c.Uploads.Complete(ctx, up2.ID, openai.UploadCompleteParams{PartIDs: []string{"part_1"}})
	if err != nil || done.File.ID == "" {
		t.Fatalf("devops completes its upload: %v %v", done, err)
	}
	_, err = payB.c.Files.Get(ctx, done.File.ID)
	refusedObject(t, "payments retrieves devops' uploaded file", 0, done.File.ID, err)
	_, err = payB.c.Uploads.Complete(ctx, up2.ID, openai.UploadCompleteParams{PartIDs: []string{"part_1"}})
	refusedObject(t, "payments completes devops' upload", 1, up2.ID, err)
	// A thread made and run at once is its maker's.
	var run struct {
		Thread string `json:"thread_id"`
	}
	if err := devA.c.Post(ctx, "threads/runs", map[string]any{}, &run); err != nil || run.Thread == "" {
		t.Fatalf("devops makes and runs a thread: %v %v", run, err)
	}
	refusedObject(t, "payments retrieves devops' run thread", 10, run.Thread, payB.c.Get(ctx, "threads/"+run.Thread, nil, &out))
}

// TestGatewayKeepsEachTeamsObjectsToItself: every team's calls go
// upstream with the one upstream key, so a file, batch, vector store,
// conversation, upload, container, fine-tuning job, eval, assistant or
// thread one team made through the gateway could be retrieved, changed
// or deleted with another team's key by whoever knew its id, and every
// list showed every team's objects. Now the gateway records the team
// that made each and answers another team OpenAI's 404, and lists each
// team's own.
func TestGatewayKeepsEachTeamsObjectsToItself(t *testing.T) {
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	checkObjectsIsolated(t, up, e.url, e.url)
}

// TestGatewayKeepsEachTeamsObjectsToItselfOverReplicas: with Redis, an
// object made through one replica is refused to another team, and is in
// its own team's list, through the other.
func TestGatewayKeepsEachTeamsObjectsToItselfOverReplicas(t *testing.T) {
	_, prefix := testRedis(t)
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, hs.URL+"/v1", isolatedPolicies, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\n")
	a, b := serveFile(t, cfgPath), serveFile(t, cfgPath)
	checkObjectsIsolated(t, up, a.url, b.url)
}

// TestGatewayListsPageTheTeamsOwnObjects: for random mixes of two teams'
// files and files made outside the gateway, any limit (or none: the
// upstream's pages of 20 under OpenAI's 10,000 for files) and either
// direction, paging a team's list through the gateway gives exactly its
// own files, in the upstream's order, each once; no page is over its
// limit, has_more is false only on the last page, and first_id and
// last_id are the page's (objectAPI.list).
func TestGatewayListsPageTheTeamsOwnObjects(t *testing.T) {
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	apis := [2]*objectAPI{newObjectAPI(t, e.url, devopsKey, "devops"), newObjectAPI(t, e.url, paymentsKey, "payments")}
	rng := rand.New(rand.NewPCG(1, 2))
	var own [2][]string
	for range 10 {
		for range rng.IntN(25) {
			switch who := rng.IntN(3); who {
			case 0, 1:
				own[who] = append(own[who], apis[who].create(0))
			default:
				up.mu.Lock()
				up.add(0, "")
				up.mu.Unlock()
			}
		}
		for who, api := range apis {
			limit, backward := rng.IntN(6), rng.IntN(2) == 0
			if got := api.list(0, limit, backward); !slices.Equal(got, own[who]) {
				t.Errorf("%s lists its files (limit %d, backward %v): %q, want %q", api.as, limit, backward, got, own[who])
			}
		}
	}
}

// checkStoredChatIsolated checks that the chat completions devops stored
// through gateway a (store: true; a JSON answer through openai-go, a
// stream through go-openai) are refused to payments through b —
// retrieved, their messages listed, updated, deleted — with a 404, none
// reaching the upstream; that each team's list holds its own stored
// completions only; and that devops uses its own through b.
func checkStoredChatIsolated(t *testing.T, up *objectStore, a, b string) {
	ctx := context.Background()
	devA, devB, payB := newObjectAPI(t, a, devopsKey, "devops"), newObjectAPI(t, b, devopsKey, "devops"), newObjectAPI(t, b, paymentsKey, "payments")
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Store: openai.Bool(true),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("devops: the root password is hunter2")}}
	c1, err := devA.c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	goDev := goopenai.NewClientWithConfig(func() goopenai.ClientConfig {
		c := goopenai.DefaultConfig(devopsKey)
		c.BaseURL = a + "/v1"
		return c
	}())
	st, err := goDev.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{Model: "gpt-4o-mini", Store: true, Stream: true,
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "devops: streamed secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	var c2 string
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c2 = ch.ID
	}
	st.Close()
	if _, err := devA.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("not stored")}}); err != nil {
		t.Fatal(err)
	}
	params.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("payments: card data")}
	c3, err := payB.c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	before := up.uses()
	for _, id := range []string{c1.ID, c2} {
		_, err := payB.c.Chat.Completions.Get(ctx, id)
		refusedObject(t, "payments retrieves devops' stored chat completion", 5, id, err)
		_, err = payB.c.Chat.Completions.Messages.List(ctx, id, openai.ChatCompletionMessageListParams{})
		refusedObject(t, "payments lists the messages of", 5, id, err)
		_, err = payB.c.Chat.Completions.Update(ctx, id, openai.ChatCompletionUpdateParams{Metadata: map[string]string{"x": "y"}})
		refusedObject(t, "payments updates", 5, id, err)
		_, err = payB.c.Chat.Completions.Delete(ctx, id)
		refusedObject(t, "payments deletes", 5, id, err)
	}
	if n := up.uses() - before; n != 0 {
		t.Errorf("the upstream got %d of payments' requests for devops' chat completions, want none", n)
	}
	if got, err := devB.c.Chat.Completions.Get(ctx, c2); err != nil || got.ID != c2 {
		t.Errorf("devops retrieves its streamed chat completion: %v %v", got, err)
	}
	if l := devB.list(5, 1, false); !slices.Equal(l, []string{c1.ID, c2}) {
		t.Errorf("devops lists its stored chat completions: %q, want %q", l, []string{c1.ID, c2})
	}
	if l := payB.list(5, 0, false); !slices.Equal(l, []string{c3.ID}) {
		t.Errorf("payments lists its stored chat completions: %q, want %q", l, []string{c3.ID})
	}
	_, err = devA.c.Chat.Completions.Get(ctx, c3.ID)
	refusedObject(t, "devops retrieves payments' stored chat completion", 5, c3.ID, err)
}

// TestGatewayKeepsEachTeamsStoredChatCompletionsToItself: a chat
// completion a team stored (store: true) could be read, updated and
// deleted by another team's key, and GET /v1/chat/completions listed
// every team's. Now the gateway records the team of a stored completion
// as its answer (or its stream's first chunk) passes.
func TestGatewayKeepsEachTeamsStoredChatCompletionsToItself(t *testing.T) {
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	checkStoredChatIsolated(t, up, e.url, e.url)
}

// TestGatewayKeepsEachTeamsStoredChatCompletionsToItselfOverReplicas: the
// same with two replicas sharing Redis.
func TestGatewayKeepsEachTeamsStoredChatCompletionsToItselfOverReplicas(t *testing.T) {
	_, prefix := testRedis(t)
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	cfgPath := writeFiles(t, hs.URL+"/v1", isolatedPolicies, "redis: {addr: "+redisAddr()+", prefix: "+prefix+"}\n")
	a, b := serveFile(t, cfgPath), serveFile(t, cfgPath)
	checkStoredChatIsolated(t, up, a.url, b.url)
}

// TestGatewayListOfGarbageIsAnError: an upstream's answer to a list that
// is not a list page (not JSON, cut, no data array) is a 502 OpenAI error
// through openai-go, never an empty list passed as a success; an upstream
// that ignores the cursor and says has_more on every page ends the
// gateway's reading (has_more true, the team's objects once).
func TestGatewayListOfGarbageIsAnError(t *testing.T) {
	var answer string
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			_, _ = io.WriteString(w, `{"id":"file-mine","object":"file"}`)
			return
		}
		_, _ = io.WriteString(w, answer)
	}))
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	dev := newObjectAPI(t, e.url, devopsKey, "devops")
	dev.create(0)
	for _, garbage := range []string{`{"ok":true}`, `not json`, `{"object":"list","data":{}}`, `{"object":"list","data":[{"id":"file-mine"}`, `[]`, `{"data":null}`} {
		mu.Lock()
		answer = garbage
		mu.Unlock()
		var out json.RawMessage
		err := dev.c.Get(context.Background(), "files", nil, &out)
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadGateway || ae.Type == "" || ae.Message == "" {
			t.Errorf("a list answered %q: %s %v, want a 502 OpenAI error", garbage, out, err)
		}
	}
	mu.Lock()
	answer = `{"object":"list","data":[{"id":"file-other"},{"id":"file-mine"}],"first_id":"file-other","last_id":"file-mine","has_more":true}`
	mu.Unlock()
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if err := dev.c.Get(context.Background(), "files?limit=5", nil, &page); err != nil || len(page.Data) != 1 || page.Data[0].ID != "file-mine" || !page.HasMore {
		t.Errorf("a list whose upstream pages without end: %+v %v, want file-mine once, has_more", page, err)
	}
}

// TestGatewayRefusesAnotherTeamsConversationToAResponsesCall: a Responses
// call that names a conversation (conversation: "conv_…" or {"id": …})
// another team made is answered the conversation's 404 before the
// upstream — the model would read that team's conversation and add to
// it; the team that made it uses it. Before, payments' call naming
// devops' conversation reached the upstream.
func TestGatewayRefusesAnotherTeamsConversationToAResponsesCall(t *testing.T) {
	up := newObjectStore()
	hs := httptest.NewServer(up)
	defer hs.Close()
	t.Setenv(upstreamEnv, upstreamKey)
	e := serveFile(t, writeFiles(t, hs.URL+"/v1", isolatedPolicies, ""))
	ctx := context.Background()
	dev, pay := newObjectAPI(t, e.url, devopsKey, "devops"), newObjectAPI(t, e.url, paymentsKey, "payments")
	conv := dev.create(4)
	for _, named := range []responses.ResponseNewParamsConversationUnion{
		{OfString: openai.String(conv)},
		{OfConversationObject: &responses.ResponseConversationParam{ID: conv}},
	} {
		params := responses.ResponseNewParams{Model: "gpt-4o-mini", Conversation: named,
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("what did they say?")}}
		before := up.uses()
		_, err := pay.c.Responses.New(ctx, params)
		refusedObject(t, "payments continues devops' conversation", 4, conv, err)
		if n := up.uses() - before; n != 0 {
			t.Errorf("the upstream got %d of payments' calls naming devops' conversation", n)
		}
		if _, err := dev.c.Responses.New(ctx, params); err != nil {
			t.Errorf("devops continues its conversation: %v", err)
		}
	}
}
