package gateway_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// objectsUpstream is the upstream of FuzzGatewayOwnedObjects: a POST
// answers create (a status and a body), the first GET page1 (with
// status), every later GET page2; it counts the GETs of an object by id.
type objectsUpstream struct {
	mu           sync.Mutex
	createStatus int
	create       []byte
	status       int
	page1, page2 []byte
	gets, byID   int
}

func (u *objectsUpstream) set(createStatus int, create []byte, status int, page1, page2 []byte) {
	u.mu.Lock()
	u.createStatus, u.create, u.status, u.page1, u.page2, u.gets, u.byID = createStatus, create, status, page1, page2, 0, 0
	u.mu.Unlock()
}

func (u *objectsUpstream) counts() (gets, byID int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets, u.byID
}

func (u *objectsUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost:
		w.WriteHeader(u.createStatus)
		_, _ = w.Write(u.create)
	case !slices.Contains(fuzzObjectFamilies, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1"), "/")):
		u.byID++
		_, _ = io.WriteString(w, `{"id":"someone","object":"file"}`)
	default:
		u.gets++
		if u.gets == 1 {
			w.WriteHeader(u.status)
			_, _ = w.Write(u.page1)
			return
		}
		_, _ = w.Write(u.page2)
	}
}

// fuzzObjectFamilies are the listed families FuzzGatewayOwnedObjects
// lists.
var fuzzObjectFamilies = []string{"/files", "/batches", "/vector_stores", "/chat/completions", "/containers", "/fine_tuning/jobs", "/evals", "/assistants"}

// fuzzObjectStatuses are the statuses of the upstream's first list page
// (and of its answer to a creation).
var fuzzObjectStatuses = []int{200, 200, 200, 200, 201, 400, 404, 500}

func listPageOf(more bool, ids ...string) string {
	var items []string
	for _, id := range ids {
		items = append(items, `{"id":`+strconv.Quote(id)+`,"object":"file","created_at":1}`)
	}
	first, last := "null", "null"
	if len(ids) > 0 {
		first, last = strconv.Quote(ids[0]), strconv.Quote(ids[len(ids)-1])
	}
	return `{"object":"list","data":[` + strings.Join(items, ",") + `],"first_id":` + first + `,"last_id":` + last + `,"has_more":` + strconv.FormatBool(more) + `}`
}

// FuzzGatewayOwnedObjects: whatever an upstream answers to an owned
// family's creation and list (status, body; one page or more), and
// whatever query the client lists with, the gateway answers within the
// timeout, without a panic, the upstream's error status as it came, an
// OpenAI-shaped error for every error of its own (a page that is no list), and a
// 2xx list that names only the objects the team created through the
// gateway: never another team's (payments' file-pay), never one the
// gateway never saw created; no more of them than the limit asked, a
// boolean has_more, first_id and last_id (when the page has them) those of
// its first and last object. Another team's object is refused without
// asking the upstream.
func FuzzGatewayOwnedObjects(f *testing.F) {
	seeds := []struct {
		fam, status uint8
		query       string
		createID    string
		page1       string
		page2       string
	}{
		{0, 0, "", "file-d1", listPageOf(false, "file-pay", "file-dev", "file-d1", "file-x"), ""},
		{0, 0, "limit=1", "file-d2", listPageOf(true, "file-dev", "file-pay"), listPageOf(false, "file-d2", "file-pay")},
		{2, 0, "limit=1&after=file-x", "vs_1", listPageOf(true, "file-pay", "file-pay"), listPageOf(true, "file-pay")},
		{2, 0, "before=file-x&limit=2", "vs_2", listPageOf(true, "vs_2", "file-pay"), listPageOf(false, "file-dev", "vs_1")},
		{3, 0, "limit=0", "", `{"object":"list","data":[],"has_more":false}`, ""},
		{4, 0, "limit=-3", "cntr_1", `{"data":null}`, ""},
		{5, 0, "limit=abc&after=", "ftjob-1", `{"data":[null,1,"x",{"id":7},{"id":null},{"ID":"file-dev"}],"has_more":true}`, `{"data":[]}`},
		{6, 0, "", "eval_1", `{"data":[{"id":"file-dev"}],"has_more":"true"}`, ""},
		{7, 0, "limit=100000000000000000000", "asst_1", `{"data":[{"id":"file-dev"},{"id":"file-pay"}],"Data":[{"id":"file-pay"}],"has_more":false}`, ""},
		{0, 0, "", "file-d3", `{"data":[{"id":"file-dev"}],"data":[{"id":"file-pay"}]}`, ""},
		{0, 0, "", "file-d4", `{"data":[{"id":"file-dev","id":"file-pay"}]}`, ""},
		{0, 0, "", "file-d5", `{"data":[{"id":"file-d5"}],"has_more":true}`, `not json`},
		{0, 0, "", "file-d6", `{"data":[{"id":""}],"has_more":true}`, listPageOf(false, "file-dev")},
		{0, 4, "", "file-d7", listPageOf(false, "file-pay", "file-dev"), ""},
		{0, 5, "", "file-d8", `{"error":{"message":"bad","type":"invalid_request_error"}}`, ""},
		{0, 7, "", "", `<html>oops</html>`, ""},
		{0, 0, "", "", ``, ""},
		{0, 0, "", "", `[]`, ""},
		{0, 0, "", "", "\xef\xbb\xbf" + listPageOf(false, "file-dev"), ""},
		{0, 0, "", "", `{"data":[` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `]}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.fam, s.status, s.query, s.createID, []byte(s.page1), []byte(s.page2))
	}
	f.Setenv(upstreamEnv, upstreamKey)
	up := &objectsUpstream{}
	ts := httptest.NewServer(up)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Cleanup(ts.Close)
	g := startFuzzGateway(f, ts.URL+"/v1", fuzzUpstreamPolicies, "pass_unpoliced: true\n")
	// The objects of each team, created through the gateway.
	mine := map[string]bool{}
	create := func(t testing.TB, key, id string, status int) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"id": id, "object": "vector_store"})
		up.set(status, body, 200, nil, nil)
		a := g.postTo(t.(*testing.T), "/v1/vector_stores", key, []byte(`{"name":"x"}`), false)
		if a.status != status {
			t.Fatalf("a creation the upstream answered %d: %d %s", status, a.status, a.body)
		}
		if key == devopsKey && status/100 == 2 && id != "" {
			mine[id] = true
		}
	}
	f.Fuzz(func(t *testing.T, fam, status uint8, query, createID string, page1, page2 []byte) {
		// The query as a client's URL library writes it (a raw space or
		// control character is net/http's own 400, before the gateway).
		if v, err := url.ParseQuery(query); err == nil {
			query = v.Encode()
		} else {
			query = url.QueryEscape(query)
		}
		if _, ok := mine["file-dev"]; !ok {
			create(t, devopsKey, "file-dev", 200)
			create(t, paymentsKey, "file-pay", 200)
		}
		g.clearLogs()
		if createID != "file-pay" {
			create(t, devopsKey, createID, fuzzObjectStatuses[status%8])
			g.checkNoPanic(t)
		}
		path := fuzzObjectFamilies[int(fam)%len(fuzzObjectFamilies)]
		st := fuzzObjectStatuses[(status>>3)%8]
		up.set(200, nil, st, page1, page2)
		a := g.get(t, "/v1"+path+"?"+query, devopsKey)
		g.checkNoPanic(t)
		gets, _ := up.counts()
		if a.status/100 != 2 {
			if st/100 != 2 {
				// The upstream's error, passed on as it came (an
				// endpoint the gateway does not police).
				if a.status != st {
					t.Fatalf("the upstream's list page answered %d: the caller got %d: %s", st, a.status, a.body)
				}
				return
			}
			checkErrorAnswer(t, a)
			if a.status != http.StatusBadGateway && a.status != http.StatusBadRequest {
				t.Fatalf("the upstream's list page answered %d: the caller got %d: %s", st, a.status, a.body)
			}
			return
		}
		if gets == 0 {
			t.Fatalf("a 2xx list that never went upstream: %s", a.body)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(a.body, &top); err != nil {
			t.Fatalf("a %d list that is not a JSON object (%v): %q\nupstream: %q", a.status, err, a.body, page1)
		}
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(top["data"], &items); err != nil {
			t.Fatalf("a %d list whose data is no array of objects (%v): %q\nupstream: %q", a.status, err, a.body, page1)
		}
		ids := make([]string, len(items))
		for i, it := range items {
			_ = json.Unmarshal(it["id"], &ids[i])
			if !mine[ids[i]] {
				t.Fatalf("devops's list names %q, an object it did not create: %s\nupstream: %q then %q", ids[i], a.body, page1, page2)
			}
		}
		q, _ := url.ParseQuery(query)
		if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && len(items) > n {
			t.Fatalf("limit %d, %d objects listed: %s", n, len(items), a.body)
		}
		var more bool
		if err := json.Unmarshal(top["has_more"], &more); err != nil {
			t.Fatalf("has_more is no boolean: %s", a.body)
		}
		for m, want := range map[string]int{"first_id": 0, "last_id": len(items) - 1} {
			v, ok := top[m]
			if !ok {
				continue
			}
			got := ""
			if len(items) == 0 {
				if string(v) != "null" {
					t.Fatalf("an empty list with %s %s: %s", m, v, a.body)
				}
				continue
			}
			if json.Unmarshal(v, &got) != nil || got != ids[want] {
				t.Fatalf("%s %s, the list's object there is %q: %s", m, v, ids[want], a.body)
			}
		}
		// Another team's object, by id: refused here, not asked upstream.
		up.set(200, nil, 200, nil, nil)
		b := g.get(t, "/v1/files/file-pay", devopsKey)
		if _, byID := up.counts(); b.status != http.StatusNotFound || byID != 0 {
			t.Fatalf("devops's GET of payments' file: %d, %d requests upstream: %s", b.status, byID, b.body)
		}
	})
}

// get sends a GET of path with key.
func (g *fuzzGateway) get(t *testing.T, path, key string) fuzzAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		t.Skip("not a request net/http sends")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := g.client.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "invalid") {
			t.Skip(err)
		}
		t.Fatalf("no answer (a hang, or a connection dropped by a panic): %v\ngateway log:\n%s", err, g.logs.String())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("status %d: the body was cut: %v (read %q)", resp.StatusCode, err, b)
	}
	return fuzzAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}
