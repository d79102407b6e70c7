package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Every team's calls go upstream with the one upstream key, so a stored
// response one team created is, upstream, everyone's. The gateway records
// the team that created each response id it passes (the id of a Responses
// call's JSON answer, or of its stream's events; a cache hit adds the team
// it is served to, which was given the response) and refuses — with the
// 404 OpenAI answers for an id it does not know — a retrieval, an
// input_items listing, a cancellation, a deletion, or a previous_response_id,
// of a response another team created. An id the gateway never saw created
// passes as before (it may have been created outside the gateway).
//
// The record is kept in memory (at most maxResponseOwners ids, the oldest
// evicted) and, with Redis, shared by the replicas under
// <prefix>:responses:owner:<id> for responseOwnerTTL, as long as OpenAI
// keeps a stored response.

// responseOwnerTTL is how long an id's owners are kept: OpenAI keeps a
// stored response 30 days.
const responseOwnerTTL = 30 * 24 * time.Hour

// maxResponseOwners bounds the ids kept in memory.
var maxResponseOwners = 1 << 17 // (a variable for the tests)

// responseOwnerTimeout bounds each Redis call of responseOwners.
const responseOwnerTimeout = 3 * time.Second

// maxOwnerLine bounds a stream's line read for a response id (a longer
// line, a final event with a large output, is not read: the stream's
// first event has the id).
const maxOwnerLine = 1 << 20

type responseOwners struct {
	mu    sync.Mutex
	teams map[string]*ownerEntry
	order []string // the ids in the order they were first recorded
	rdb   goredis.UniversalClient
	key   string // <prefix>:responses:owner:
	// forever: an id's owners are kept until it is forgotten (an object
	// that lives upstream until it is deleted), not responseOwnerTTL.
	forever bool
}

type ownerEntry struct {
	teams []string
	at    time.Time
}

var errOwnerStore = &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "response_owner_unavailable",
	Message: "tokenwise/gateway: the team that created this response could not be read from the gateway's store; retry later"}

// notFoundResponse is OpenAI's answer to an id it does not know.
func notFoundResponse(id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: "Response with id '" + id + "' not found."}
}

// record adds team to the owners of response id.
func (o *responseOwners) record(ctx context.Context, logger *slog.Logger, team, id string) {
	if id == "" {
		return
	}
	o.mu.Lock()
	if o.teams == nil {
		o.teams = map[string]*ownerEntry{}
	}
	e := o.teams[id]
	if e == nil {
		for len(o.teams) >= maxResponseOwners && len(o.order) > 0 {
			delete(o.teams, o.order[0])
			o.order[0] = ""
			o.order = o.order[1:]
		}
		e = &ownerEntry{}
		o.teams[id] = e
		o.order = append(o.order, id)
	}
	e.at = time.Now()
	if !slices.Contains(e.teams, team) {
		e.teams = append(e.teams, team)
	}
	o.mu.Unlock()
	if o.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), responseOwnerTimeout)
	defer cancel()
	_, err := o.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SAdd(ctx, o.key+id, team)
		if !o.forever {
			p.Expire(ctx, o.key+id, responseOwnerTTL)
		}
		return nil
	})
	if err != nil {
		logger.Warn("tokenwise/gateway: the team that created a response could not be shared through Redis: other replicas will not refuse it to other teams",
			"team", team, "response_id", id, "error", err)
	}
}

// live reports whether e, an id's owners, is still kept.
func (o *responseOwners) live(e *ownerEntry) bool {
	return o.forever || time.Since(e.at) < responseOwnerTTL
}

// forget drops the record of id (an object its team deleted upstream).
func (o *responseOwners) forget(ctx context.Context, logger *slog.Logger, id string) {
	o.mu.Lock()
	delete(o.teams, id)
	o.mu.Unlock()
	if o.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), responseOwnerTimeout)
	defer cancel()
	if err := o.rdb.Del(ctx, o.key+id).Err(); err != nil {
		logger.Warn("tokenwise/gateway: the record of a deleted object could not be dropped from Redis", "object_id", id, "error", err)
	}
}

// allowed reports whether team may use response id: it created it (or was
// served it from the cache), or the gateway never saw it created. An
// error: Redis could not tell.
func (o *responseOwners) allowed(ctx context.Context, team, id string) (bool, error) {
	o.mu.Lock()
	e := o.teams[id]
	var teams []string
	if e != nil && o.live(e) {
		teams = slices.Clone(e.teams)
	}
	o.mu.Unlock()
	if slices.Contains(teams, team) {
		return true, nil
	}
	if o.rdb == nil {
		return len(teams) == 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, responseOwnerTimeout)
	defer cancel()
	shared, err := o.rdb.SMembers(ctx, o.key+id).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		if len(teams) > 0 {
			return false, nil // another team's, as this replica saw
		}
		return false, err
	}
	if slices.Contains(shared, team) {
		return true, nil
	}
	return len(teams) == 0 && len(shared) == 0, nil
}

// responsePathID returns the response id of a request for a response
// (/v1/responses/{id} and what is under it: input_items, cancel), any
// method: ids the gateway recorded are never another endpoint's name
// (compact, input_tokens).
func responsePathID(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/responses/")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, id != ""
}

// checkOwner refuses (the error to write) team's use of response id
// another team created; nil when team may use it.
func (s *Server) checkOwner(ctx context.Context, team, id string) *apiError {
	if id == "" {
		return nil
	}
	ok, err := s.owners.allowed(ctx, team, id)
	if err != nil {
		s.logger.Warn("tokenwise/gateway: the team that created a response could not be read from Redis: refused", "team", team, "response_id", id, "error", err)
		return errOwnerStore
	}
	if !ok {
		s.logger.Warn("tokenwise/gateway: refused another team's response", "team", team, "response_id", id)
		return notFoundResponse(id)
	}
	return nil
}

// previousResponseID returns the previous_response_id of a Responses
// request's body (req, when the gateway could read it).
func previousResponseID(req *responsesRequest, body []byte) string {
	if req != nil {
		return req.PreviousResponseID
	}
	var v struct {
		PreviousResponseID string `json:"previous_response_id"`
	}
	_ = json.Unmarshal(body, &v)
	return v.PreviousResponseID
}

// recordOwner is the outermost hook of a Responses call's answer: the ids
// of the responses it passes on (a JSON answer's, its stream events') are
// recorded as team's before the client reads them.
func (s *Server) recordOwner(team string, next func(*http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		if err := next(resp); err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return nil
		}
		ctx := resp.Request.Context()
		rec := func(id string) { s.owners.record(ctx, s.logger, team, id) }
		if isEventStream(resp) {
			if rs, ok := resp.Body.(*responsesStream); ok && rs.owner == nil {
				// The stream the call is settled from reads the ids in
				// its one pass over the events (a tap over it, a second
				// pass, cost a tenth of the call's CPU:
				// BenchmarkInProcessResponsesStream).
				rs.owner = rec
				return nil
			}
			resp.Body = &ownerTap{src: resp.Body, record: rec}
			return nil
		}
		body, whole, err := readAnswer(resp, maxResponsesEvent)
		if err != nil || !whole {
			return err
		}
		for _, id := range answerResponseIDs(body) {
			rec(id)
		}
		return nil
	}
}

// answerResponseIDs returns the response ids of body, a Responses answer:
// a response object's, or a stream's.
func answerResponseIDs(body []byte) []string {
	var o struct {
		ID     string `json:"id"`
		Object string `json:"object"`
	}
	if json.Unmarshal(body, &o) == nil {
		if o.ID != "" && (o.Object == "" || o.Object == "response") {
			return []string{o.ID}
		}
		return nil
	}
	var ids []string
	t := &ownerTap{record: func(id string) { ids = append(ids, id) }}
	t.scan(body)
	t.scan([]byte{'\n'})
	return ids
}

// ownerTap reads a Responses stream as it is passed on, recording the id
// of each response its events carry before the line that has it is read.
type ownerTap struct {
	src    io.ReadCloser
	line   []byte
	skip   bool // the current line is over maxOwnerLine
	last   string
	record func(id string)
	// idOf reads the id of an event's data (nil: the response id of a
	// Responses event).
	idOf func(data []byte) string
}

func (t *ownerTap) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.scan(p[:n])
	return n, err
}

func (t *ownerTap) Close() error { return t.src.Close() }

// scan reads the lines of b, continuing the current one. A line ends at a
// CR or an LF, as the SSE spec ends them (a CRLF ends one line and an
// empty one, which holds no event).
func (t *ownerTap) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if !t.skip {
			if len(t.line)+len(part) > maxOwnerLine {
				if t.idOf != nil {
					// A chat chunk over the bound: its id is near its
					// start, read from its first maxOwnerLine bytes.
					t.line = append(t.line, part[:maxOwnerLine-len(t.line)]...)
					if data, ok := bytes.CutPrefix(t.line, []byte("data:")); ok {
						if id := leadingID(bytes.TrimLeft(data, " ")); id != "" && id != t.last {
							t.last = id
							t.record(id)
						}
					}
				}
				t.skip, t.line = true, t.line[:0]
			} else {
				t.line = append(t.line, part...)
			}
		}
		if i < 0 {
			return
		}
		if !t.skip {
			t.event(t.line)
		}
		t.line, t.skip = t.line[:0], false
		b = b[i+1:]
	}
}

func (t *ownerTap) event(line []byte) {
	data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:"))
	if !ok {
		return
	}
	if t.idOf != nil {
		if id := t.idOf(data); id != "" && id != t.last {
			t.last = id
			t.record(id)
		}
		return
	}
	if !bytes.Contains(data, []byte(`"response"`)) {
		return
	}
	var ev struct {
		Response struct {
			ID string `json:"id"`
		} `json:"response"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Response.ID == "" || ev.Response.ID == t.last {
		return
	}
	t.last = ev.Response.ID
	t.record(ev.Response.ID)
}
