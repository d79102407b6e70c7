package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tokenwise/tokenwise/middleware"
)

// Every team's calls go upstream with the one upstream key, so an object a
// team creates upstream — a file, a batch, a vector store, a conversation,
// a stored chat completion… — is, upstream, everyone's. As for stored
// Responses (responses_owner.go, whose record this uses: objectOwners),
// the gateway records the team that created each object of an owned
// family it passes (the id of the answer to a POST to the family's path;
// a batch's output and error files and an upload's file as its owner
// reads them) and answers another team's request for it — any method,
// any path under it — with an OpenAI-shaped 404, without asking the
// upstream. A family's list (GET of its path) is filtered to the team's
// own objects, page by page (ownedList). An id the gateway never saw
// created passes as before; it is in no team's list.

// ownedFamily is a family of stateful objects, by the path after /v1.
type ownedFamily struct {
	path string
	// what names the object in the 404 ("No such File object: …").
	notFound func(id string) string
	// code is the 404's code ("": null).
	code string
	// list: GET path lists the objects, a cursor page ({"data": […],
	// "has_more": …}).
	list bool
	// also are the members of the family's objects naming other objects
	// they made, recorded as their owner's when it reads them.
	also []string
}

func quoted(format string) func(string) string {
	return func(id string) string { return fmt.Sprintf(format, id) }
}

// ownedFamilies are the families of objects the gateway keeps to the team
// that created them.
var ownedFamilies = []*ownedFamily{
	{path: "/files", notFound: quoted("No such File object: %s"), list: true},
	{path: "/uploads", notFound: quoted("No such Upload object: %s"), also: []string{"file"}},
	{path: "/batches", notFound: quoted("No batch found with id '%s'."), list: true, also: []string{"output_file_id", "error_file_id"}},
	{path: "/vector_stores", notFound: quoted("No vector store found with id '%s'."), list: true},
	{path: "/conversations", notFound: quoted("Conversation with id '%s' not found.")},
	{path: "/chat/completions", notFound: quoted("Chat completion with id '%s' not found."), list: true},
	{path: "/containers", notFound: quoted("Container with id '%s' not found."), list: true},
	{path: "/fine_tuning/jobs", notFound: quoted("Fine-tuning job %s not found."), list: true,
		also: []string{"result_files", "fine_tuned_model", "fine_tuned_model_checkpoint"}},
	{path: "/evals", notFound: quoted("Eval with id '%s' not found."), list: true},
	{path: "/assistants", notFound: quoted("No assistant found with id '%s'."), list: true},
	{path: "/threads", notFound: quoted("No thread found with id '%s'."), also: []string{"thread_id"}},
}

// conversations is the family of conversation objects, which a Responses
// call names by id (conversation).
var conversations = ownedFamilies[4]

// conversationID returns the id of the conversation a Responses request's
// body names (req, when the gateway could read it): "conversation": "conv_…"
// or {"id": "conv_…"}.
func conversationID(req *responsesRequest, body []byte) string {
	raw := json.RawMessage(nil)
	if req != nil {
		raw = req.Conversation
	} else {
		var v struct {
			Conversation json.RawMessage `json:"conversation"`
		}
		_ = json.Unmarshal(body, &v)
		raw = v.Conversation
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.ID
}

// ownedRequest is what an owned family's request is: the creation of an
// object (a POST to the family's path), its list, or a request for object
// id (and what is under it).
type ownedRequest struct {
	fam    *ownedFamily
	create bool
	list   bool
	id     string
	// whole: the request is for the object itself (/files/{id}), not
	// what is under it.
	whole bool
}

// ownedPath classifies r: ok false when its path is no owned family's.
func ownedPath(r *http.Request) (ownedRequest, bool) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1"), "/")
	for _, f := range ownedFamilies {
		rest, ok := strings.CutPrefix(path, f.path)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		id, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
		switch {
		case id == "" && r.Method == http.MethodPost:
			return ownedRequest{fam: f, create: true}, true
		case id == "" && f.list && r.Method == http.MethodGet:
			return ownedRequest{fam: f, list: true}, true
		case f.path == "/threads" && id == "runs":
			// POST /threads/runs makes a thread and runs it: its answer,
			// a run, names the thread (also).
			return ownedRequest{fam: f, create: r.Method == http.MethodPost}, true
		}
		return ownedRequest{fam: f, id: id, whole: sub == ""}, id != ""
	}
	return ownedRequest{}, false
}

var errObjectOwnerStore = &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "owner_unavailable",
	Message: "tokenwise/gateway: the team that created this object could not be read from the gateway's store; retry later"}

// checkObject refuses (the error to write) team's request for object id
// of family f that another team created; nil when team may use it.
func (s *Server) checkObject(ctx context.Context, team string, f *ownedFamily, id string) *apiError {
	ok, err := s.objects.allowed(ctx, team, id)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: the team that created an object could not be read from Redis: refused", "team", team, "object_id", id, "error", err)
		return errObjectOwnerStore
	}
	if !ok {
		s.logger.Warn("tokenwise/gateway: refused another team's object", "team", team, "object_id", id)
		return f.refusal(id)
	}
	return nil
}

// owns reports, for each of ids, whether team created it (as the gateway
// recorded it; an id it never saw created is no team's).
func (o *responseOwners) owns(ctx context.Context, team string, ids []string) ([]bool, error) {
	mine := make([]bool, len(ids))
	var ask []int // the ids this replica does not know as team's
	o.mu.Lock()
	for i, id := range ids {
		if e := o.teams[id]; e != nil && o.live(e) && slices.Contains(e.teams, team) {
			mine[i] = true
		} else if id != "" {
			ask = append(ask, i)
		}
	}
	o.mu.Unlock()
	if o.rdb == nil || len(ask) == 0 {
		return mine, nil
	}
	ctx, cancel := context.WithTimeout(ctx, responseOwnerTimeout)
	defer cancel()
	cmds := make([]*goredis.BoolCmd, len(ask))
	_, err := o.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for j, i := range ask {
			cmds[j] = p.SIsMember(ctx, o.key+ids[i], team)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	for j, i := range ask {
		mine[i] = cmds[j].Val()
	}
	return mine, nil
}

// maxObjectAnswer bounds an owned family's answer read for the ids it
// names (a longer one is passed on unread: no id recorded).
const maxObjectAnswer = 4 << 20

// objectIDs returns the id of obj (a JSON object) and those its members
// also name (a string, an array of strings, or an object with an id).
func objectIDs(obj []byte, also []string) (id string, more []string) {
	var o map[string]json.RawMessage
	if json.Unmarshal(obj, &o) != nil {
		return "", nil
	}
	_ = json.Unmarshal(o["id"], &id)
	for _, m := range also {
		v := o[m]
		var one string
		var many []string
		var nested struct {
			ID string `json:"id"`
		}
		switch {
		case json.Unmarshal(v, &one) == nil && one != "":
			more = append(more, one)
		case json.Unmarshal(v, &many) == nil:
			more = append(more, slices.DeleteFunc(many, func(s string) bool { return s == "" })...)
		case json.Unmarshal(v, &nested) == nil && nested.ID != "":
			more = append(more, nested.ID)
		}
	}
	return id, more
}

// recordObjects is the answer's hook of an owned family's request of team
// (after next, the endpoint's own): a creation's object is recorded as
// team's, and the objects an answer's object names (also) as its owner's,
// before the client reads them.
func (s *Server) recordObjects(team string, or ownedRequest, next func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		if err := next(resp); err != nil {
			return err
		}
		if resp.StatusCode/100 == 2 && or.whole && resp.Request.Method == http.MethodDelete {
			// Deleted upstream: nothing is left to keep to its team.
			s.objects.forget(resp.Request.Context(), s.logger, or.id)
			return nil
		}
		if resp.StatusCode/100 != 2 || !or.create && len(or.fam.also) == 0 || isEventStream(resp) {
			return nil
		}
		body, whole, err := readAnswer(resp, maxObjectAnswer)
		if err != nil || !whole {
			return err
		}
		ctx := resp.Request.Context()
		id, more := objectIDs(body, or.fam.also)
		if or.id != "" {
			// A page of what is under the object (a fine-tuning job's
			// checkpoints): its objects name what the object made.
			var page struct {
				Data []json.RawMessage `json:"data"`
			}
			if json.Unmarshal(body, &page) == nil {
				for _, item := range page.Data {
					_, m := objectIDs(item, or.fam.also)
					more = append(more, m...)
				}
			}
		}
		switch {
		case or.create && or.fam.path == "/threads" && id != "" && !strings.HasPrefix(id, "thread"):
			// A thread made and run (POST /threads/runs): the answer is the
			// run; the thread is also named.
		case or.create:
			s.objects.record(ctx, s.logger, team, id)
		case or.id != "":
			// The objects a team's own object made are its: another
			// team's, or one made outside the gateway, gives nothing.
			// (The object is the path's: a page of what is under it has
			// no id of its own.)
			if mine, err := s.objects.owns(ctx, team, []string{or.id}); err != nil || !mine[0] {
				return nil
			}
		}
		for _, m := range more {
			s.objects.record(ctx, s.logger, team, m)
		}
		return nil
	}
}

// ownedList is the transport of an owned family's list: it asks the
// upstream for pages, from the client's cursor on, until it has one more
// of team's objects than the page's limit or the list ends, and answers
// the team's objects only — as many as the limit, has_more true when
// another is left, first_id and last_id those of the objects it returns
// (when the upstream's page has them). A cursor of "before" pages
// backward, as the upstream does. Each upstream page is decoded as it is
// read, a hundred objects at a time, so a page of any size (files' 10,000)
// holds in memory only the team's objects.
//
// The whole list is read within within (the team's timeouts.total, else
// defaultListTime) and maxListPages upstream pages: past either, the
// team's objects found so far are answered, has_more true (their last
// object's id continues the list); when none was found, a 504
// list_timeout. Either way the upstream's object where the reading
// stopped is kept (resume) for the same request again, which goes on
// from there: a retry, or the next page's request, makes progress.
type ownedList struct {
	next   http.RoundTripper
	owners *responseOwners
	team   string
	// fam is the listed family: what the team's objects also name (a
	// fine-tuning job's model) is recorded as the team's, with logger.
	fam    *ownedFamily
	logger *slog.Logger
	within time.Duration
	resume *listResumes
}

// maxListPages bounds the upstream pages one list request reads.
const maxListPages = 1000

// defaultListTime bounds the reading of a list whose team's policy sets
// no timeouts.total.
const defaultListTime = 60 * time.Second

// upstreamPage is the size of the upstream's pages an owned family's list
// asks for: the largest OpenAI's lists answer but for files (10,000).
const upstreamPage = 100

// defaultListLimit is the limit of a list request that gives none: OpenAI's
// default but for files (10,000, their maximum).
const defaultListLimit = 20

// maxListItem bounds one object of an upstream's list page (or another of
// its members): a larger one is no list page's.
const maxListItem = maxObjectAnswer

// errListTimeout is the answer to a list that found none of the team's
// objects within its bound.
func errListTimeout(within time.Duration, pages int) *apiError {
	return &apiError{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "list_timeout",
		Message: fmt.Sprintf("tokenwise/gateway: none of the team's objects was found in the %d upstream list pages read within %v; "+
			"the same request again continues from where the reading stopped", pages, within)}
}

// errListBound is the cause of a list's reading that passed its bound.
var errListBound = errors.New("tokenwise/gateway: the list's bound passed")

func (l *ownedList) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	limit := defaultListLimit
	if strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/files") {
		limit = 10000
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		limit = n
	}
	if n, err := strconv.Atoi(q.Get("limit")); !q.Has("limit") && limit < upstreamPage || err == nil && n > 0 && n < upstreamPage {
		// The upstream's pages are read at their largest, whatever the
		// client's page: the team's objects may be few among many
		// others', each page a round trip. (A limit the upstream refuses
		// is its to answer; files' absent limit is their largest page
		// already.)
		q.Set("limit", strconv.Itoa(max(upstreamPage, limit)))
	}
	cursor := "after"
	if q.Has("before") && !q.Has("after") {
		cursor = "before"
	}
	within := cmp.Or(l.within, defaultListTime)
	ctx, cancel := context.WithTimeoutCause(req.Context(), within, errListBound)
	defer cancel()
	key := l.team + " " + req.URL.Path + "?" + req.URL.Query().Encode()
	if at := l.resume.take(key); at != "" {
		q.Set(cursor, at)
	}
	var kept []json.RawMessage // nearest the cursor first
	var first *http.Response
	var top map[string]json.RawMessage
	upstreamMore := false // the upstream has objects past those read
	cursors := map[string]bool{}
	keptIDs := map[string]bool{}
	pages := 0
	bounded := false // the reading stopped at its bound
	stopped := ""    // the upstream's object it stopped at ("": the list's start)
	for {
		out := req.Clone(ctx)
		out.URL.RawQuery = q.Encode()
		page, resp, err := l.page(ctx, out, cursor == "before", keptIDs)
		if err != nil {
			if context.Cause(ctx) == errListBound && req.Context().Err() == nil {
				// The bound passed while a page was read: the pages
				// before it are answered.
				bounded, stopped, upstreamMore = true, q.Get(cursor), true
				break
			}
			return nil, err
		}
		if resp != nil {
			return resp, nil // the upstream's error, as it came
		}
		pages++
		if top == nil {
			top, first = page.top, page.resp
		}
		kept = append(kept, page.kept...)
		upstreamMore = page.more && page.n > 0
		if len(kept) > limit || !upstreamMore {
			break
		}
		next := page.last
		if cursor == "before" {
			next = page.first
		}
		if next == "" || cursors[next] {
			// No cursor to go on with, or one given already (an upstream
			// that does not page).
			break
		}
		cursors[next] = true
		q.Set(cursor, next)
		// At the bound's instant its timer may not have fired yet: no
		// page is asked for at the bound.
		if pages >= maxListPages || middleware.Ended(ctx) {
			bounded, stopped = true, next
			break
		}
	}
	more := len(kept) > limit || upstreamMore
	kept = kept[:min(len(kept), limit)]
	if l.fam != nil && len(l.fam.also) > 0 {
		for _, item := range kept {
			_, also := objectIDs(item, l.fam.also)
			for _, id := range also {
				l.owners.record(req.Context(), l.logger, l.team, id)
			}
		}
	}
	if bounded {
		// The same request again (the next page's, from the last object
		// answered, or a retry) goes on from stopped.
		again := req.URL.Query()
		if len(kept) > 0 {
			last, _ := objectIDs(kept[len(kept)-1], nil)
			again.Del("after")
			again.Del("before")
			again.Set(cursor, last)
		}
		if stopped != "" {
			l.resume.put(l.team+" "+req.URL.Path+"?"+again.Encode(), stopped)
		}
		if len(kept) == 0 {
			return nil, errListTimeout(within, pages)
		}
	}
	if cursor == "before" {
		slices.Reverse(kept)
	}
	data := kept
	if data == nil {
		data = []json.RawMessage{}
	}
	top["data"], _ = json.Marshal(data)
	top["has_more"], _ = json.Marshal(more)
	firstID, lastID := json.RawMessage("null"), json.RawMessage("null")
	if len(kept) > 0 {
		a, _ := objectIDs(kept[0], nil)
		z, _ := objectIDs(kept[len(kept)-1], nil)
		firstID, _ = json.Marshal(a)
		lastID, _ = json.Marshal(z)
	}
	for m, v := range map[string]json.RawMessage{"first_id": firstID, "last_id": lastID} {
		if _, ok := top[m]; ok {
			top[m] = v
		}
	}
	body, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	first.Body = io.NopCloser(bytes.NewReader(body))
	first.ContentLength = int64(len(body))
	first.Header.Set("Content-Length", strconv.Itoa(len(body)))
	first.Header.Del("Content-Encoding")
	return first, nil
}

// readPage is an upstream's list page as ownedList read it: its members
// but data (top), the team's objects of its data in the order of the
// list's reading (kept: backward for a "before" cursor), how many objects
// it had (n), the ids of its first and last, and has_more.
type readPage struct {
	resp        *http.Response
	top         map[string]json.RawMessage
	kept        []json.RawMessage
	n           int
	first, last string
	more        bool
}

// page asks the upstream for out's page and reads it, decoding its data a
// hundred objects at a time: the upstream's answer when it is no 2xx
// (resp), an error when it is no list page.
func (l *ownedList) page(ctx context.Context, out *http.Request, backward bool, keptIDs map[string]bool) (readPage, *http.Response, error) {
	resp, err := l.next.RoundTrip(out)
	if err != nil {
		return readPage{}, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return readPage{}, resp, nil
	}
	// (Any 2xx is a list page, filtered: a 201 or a 203 of an
	// OpenAI-compatible server or a proxy in front of it lists every
	// team's objects as a 200 does.)
	defer resp.Body.Close()
	p := readPage{resp: resp, top: map[string]json.RawMessage{}}
	cr := &countReader{r: resp.Body}
	dec := json.NewDecoder(cr)
	notList := func(why string) error {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		if cr.err != nil && cr.err != io.EOF && !errors.Is(cr.err, errListItemTooLarge) {
			return cr.err // the read's failure, not the page's
		}
		return fmt.Errorf("the upstream's answer to a list is not a list page (%s, %d bytes read)", why, cr.n)
	}
	var pageKept []json.RawMessage
	var ids []string
	var items []json.RawMessage
	flush := func() error {
		mine, err := l.owners.owns(ctx, l.team, ids)
		if err != nil {
			return err
		}
		for i, item := range items {
			if mine[i] && !keptIDs[ids[i]] { // (an upstream that repeats an object gives it once)
				keptIDs[ids[i]] = true
				pageKept = append(pageKept, item)
			}
		}
		ids, items = ids[:0], items[:0]
		return nil
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return p, nil, notList("no JSON object")
	}
	sawData := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return p, nil, notList("a member's name")
		}
		name, _ := t.(string)
		cr.mark()
		switch {
		case strings.EqualFold(name, "data"):
			// (Go's JSON decoders, go-openai's, read any case of the name
			// as data: every one is the list's, filtered.)
			if t, err := dec.Token(); err != nil || t != json.Delim('[') {
				return p, nil, notList("data is no array")
			}
			sawData = true
			for dec.More() {
				cr.mark()
				var item json.RawMessage
				if err := dec.Decode(&item); err != nil {
					return p, nil, notList("an object of data")
				}
				id, _ := objectIDs(item, nil)
				if p.n == 0 {
					p.first = id
				}
				p.last = id
				p.n++
				ids, items = append(ids, id), append(items, item)
				if len(items) == upstreamPage {
					if err := flush(); err != nil {
						return p, nil, err
					}
				}
			}
			if _, err := dec.Token(); err != nil {
				return p, nil, notList("data is cut")
			}
			if name != "data" {
				continue
			}
		default:
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return p, nil, notList("a member's value")
			}
			if strings.EqualFold(name, "has_more") && json.Unmarshal(v, &p.more) != nil {
				return p, nil, notList("has_more is no boolean")
			}
			if name != strings.ToLower(name) && slices.Contains([]string{"has_more", "first_id", "last_id"}, strings.ToLower(name)) {
				continue // (what the gateway writes, in the case it writes it)
			}
			p.top[name] = v
		}
	}
	if _, err := dec.Token(); err != nil {
		return p, nil, notList("the object is cut")
	}
	if _, err := dec.Token(); err != io.EOF {
		return p, nil, notList("more after the object")
	}
	if !sawData {
		return p, nil, notList("no data")
	}
	if err := flush(); err != nil {
		return p, nil, err
	}
	if backward {
		slices.Reverse(pageKept) // the nearest the cursor last in the page
	}
	p.kept = pageKept
	return p, nil, nil
}

var errListItemTooLarge = fmt.Errorf("an object of the list is over %d bytes", maxListItem)

// countReader counts what it reads, and fails a value (from its mark on)
// over maxListItem.
type countReader struct {
	r    io.Reader
	n    int64
	from int64
	err  error
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.n-c.from > maxListItem+64<<10 {
		c.err = errListItemTooLarge
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// mark begins a value.
func (c *countReader) mark() { c.from = c.n }

// listResumes are, for list requests whose reading passed its bound
// (keyed by team, path and query), the upstream's object to go on from;
// each kept for listResumeTTL, taken once.
type listResumes struct {
	mu sync.Mutex
	at map[string]listResume
}

type listResume struct {
	from string
	exp  time.Time
}

const (
	listResumeTTL = 10 * time.Minute
	maxResumes    = 4096
)

func (r *listResumes) put(key, from string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.at == nil {
		r.at = map[string]listResume{}
	}
	if len(r.at) >= maxResumes {
		for k, v := range r.at {
			if now.After(v.exp) || len(r.at) >= maxResumes {
				delete(r.at, k)
			}
		}
	}
	r.at[key] = listResume{from: from, exp: now.Add(listResumeTTL)}
}

func (r *listResumes) take(key string) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.at[key]
	delete(r.at, key)
	if !ok || time.Now().After(v.exp) {
		return ""
	}
	return v.from
}

// storedKey is the context key of a chat call's storedNote.
type storedKey struct{}

// storedNote is marked by noteStored when the chain reads a chat request
// that asks the provider to store its completion (its store member
// true): the call's completion id is then its team's (recordStoredChat).
//
// With s set, the note refuses (its error the call's) a request whose
// body names another team's object or fine-tuned model (bodyids.go),
// before the chain sends it (check).
//
// A note made by withStoredNote is also the call's context (the one
// below it, with the note as its storedKey value): the note, its check
// and its context are one allocation a call, not three (a closure and a
// context.WithValue besides).
type storedNote struct {
	context.Context
	atomic.Bool
	s    *Server // nil: no check
	team string
}

// withStoredNote returns ctx with a new storedNote of team's chat call
// (s checks the ids its body names), which is that context.
func withStoredNote(ctx context.Context, s *Server, team string) *storedNote {
	return &storedNote{Context: ctx, s: s, team: team}
}

// Value is the storedNote itself for storedKey, else its context's.
func (n *storedNote) Value(key any) any {
	if _, ok := key.(storedKey); ok {
		return n
	}
	return n.Context.Value(key)
}

// check refuses a request whose body names another team's file part or
// fine-tuned model (bodyids.go); nil without a Server.
func (n *storedNote) check(ctx context.Context, req *middleware.Request) error {
	if n.s == nil {
		return nil
	}
	if e := n.s.refuseRefs(ctx, n.team, chatRefs(req)); e != nil {
		return e
	}
	return nil
}

// noteStored puts in front of mw the layer that marks a call's
// storedNote (found in its context) when its request is stored, as the
// go-openai transport decoded it: the name's escapes read and a member
// given twice refused, by the one reader of the body, before the first
// chunk of a stream or the answer reaches the client.
func noteStored(mw middleware.Middleware) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		h := mw(next)
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			n, ok := ctx.Value(storedKey{}).(*storedNote)
			if ok {
				if err := n.check(ctx, req); err != nil {
					return nil, err
				}
			}
			if ok && storedRequest(req) {
				n.Store(true)
			}
			return h.Handle(ctx, req)
		})
	}
}

// storedRequest reports whether req's top-level store member is true
// (in req.Extra, canonical JSON of its members: names unescaped).
func storedRequest(req *middleware.Request) bool {
	if !bytes.Contains(req.Extra, []byte(`"store":`)) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(req.Extra, &top) != nil {
		return false
	}
	return string(bytes.TrimSpace(top["store"])) == "true"
}

// namesString reports whether b holds the JSON string word (ASCII), its
// letters written as they are or as \u escapes.
func namesString(b []byte, word string) bool {
	for i := bytes.IndexByte(b, '"'); i >= 0; {
		if jsonStringIs(b[i+1:], word) {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '"')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// jsonStringIs reports whether b starts with the rest of a JSON string
// (after its opening quote) that reads word (ASCII), then its closing
// quote.
func jsonStringIs(b []byte, word string) bool {
	for k := 0; k < len(word); k++ {
		switch {
		case len(b) > 0 && b[0] == word[k]:
			b = b[1:]
		case len(b) >= 6 && b[0] == '\\' && b[1] == 'u':
			v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
			if err != nil || v != uint64(word[k]) {
				return false
			}
			b = b[6:]
		default:
			return false
		}
	}
	return len(b) > 0 && b[0] == '"'
}

// recordStoredChat records as team's the chat completion resp answers a
// request that named "store" (stored), before the client reads it: a JSON
// answer read first (up to maxObjectAnswer, a longer one's id from its
// first maxObjectAnswer bytes; its read's error is passed on where it
// came), a stream's id as its first chunk is read (a chunk over
// maxOwnerLine, from its first maxOwnerLine bytes).
func (s *Server) recordStoredChat(ctx context.Context, team string, stored bool, resp *http.Response) {
	if !stored || resp.StatusCode/100 != 2 {
		return
	}
	rec := func(id string) { s.objects.record(ctx, s.logger, team, id) }
	if isEventStream(resp) {
		resp.Body = &ownerTap{src: resp.Body, record: rec, idOf: chunkID}
		return
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectAnswer+1))
	switch {
	case len(b) <= maxObjectAnswer && err == nil:
		if id, _ := objectIDs(b, nil); id != "" {
			rec(id)
		}
	case len(b) > maxObjectAnswer:
		// A longer answer: its id is near its start (OpenAI's first
		// member), read from what was read.
		if id := leadingID(b); id != "" {
			rec(id)
		}
	}
	rest := resp.Body
	if err != nil {
		rest = io.NopCloser(errReader{err})
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), resp.Body}
}

// chunkID is the id of a chat stream's chunk (an SSE data payload).
func chunkID(data []byte) string {
	var c struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &c)
	return c.ID
}

// leadingID is the id of the JSON object b begins (b may be cut short):
// the string value of its top-level member named id (in any case, as Go's
// decoders read it) that b holds whole; "" when b holds none.
func leadingID(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		name, ok := t.(string)
		if !ok {
			return ""
		}
		if strings.EqualFold(name, "id") {
			v, err := dec.Token()
			id, _ := v.(string)
			if err != nil {
				return ""
			}
			return id
		}
		// Skip the member's value, token by token (an array or object's
		// members to its end).
		depth := 0
		for {
			t, err := dec.Token()
			if err != nil {
				return ""
			}
			switch t {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
			if depth == 0 {
				break
			}
		}
	}
}
