package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/middleware"
)

// A Responses call with background: true is answered at once, its
// response queued or in progress and without usage; the provider bills
// what the response uses when it is done, which the client reads when it
// retrieves it (GET /v1/responses/{id}, as JSON or as a stream of its
// events) or cancels it (POST /v1/responses/{id}/cancel). Such a call's
// hold is not settled at its answer (nor released): it is kept, by its
// team and response id, until a retrieval or cancellation of the same
// team passed through this gateway shows the response done — then settled
// at its usage, as a response answered at once is (at its reservation when
// a done response has no usage it can read) — or, when none does within
// limits.run_idle (the client never polls), or the gateway closes,
// charged its reservation: the budget is never overshot, and a response
// the gateway sees done is charged exactly.
//
// With Redis, replicas share what they see: a replica that passes on a
// retrieval or cancellation showing done a background response it does
// not hold (the client polled it, not the one that holds it) keeps what
// of that answer settles it (billingPart: its usage, model, tier and
// hosted tools' calls, not its text) in Redis for limits.run_idle; the
// holding replica, when its hold's
// run_idle ends or it closes, settles the hold at that answer's usage
// instead of its reservation (backgroundDone).

// backgroundHolds are the holds of the background responses not yet seen
// done, by team and response id.
type backgroundHolds struct {
	mu    sync.Mutex
	holds map[string]*backgroundHold
	ttl   time.Duration
	shut  bool
	// ending counts the holds their ttl ended that are being settled:
	// close waits for them.
	ending sync.WaitGroup
	// done is where replicas share the answers that show a background
	// response done; nil without Redis.
	done *backgroundDone
}

// backgroundDone keeps, in Redis, the answers that showed a background
// response done, by team and response id, for the replica that holds it.
type backgroundDone struct {
	rdb    goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// maxSharedDone is the largest answer backgroundDone shares (a larger one
// leaves the holder to charge its reservation).
const maxSharedDone = 16 << 20

// backgroundDoneTimeout bounds each Redis call of backgroundDone.
const backgroundDoneTimeout = 3 * time.Second

func (d *backgroundDone) key(team, id string) string {
	return d.prefix + ":responses:done:" + strconv.Itoa(len(team)) + ":" + team + ":" + id
}

// put keeps body, an answer that shows team's background response id
// done (a failure to is logged: the holder then charges the reservation).
func (d *backgroundDone) put(ctx context.Context, logger *slog.Logger, team, id string, body []byte) {
	if body = billingPart(body); body == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundDoneTimeout)
	defer cancel()
	if err := d.rdb.Set(ctx, d.key(team, id), body, d.ttl).Err(); err != nil {
		logger.Warn("tokenwise/gateway: a background response seen done could not be shared through Redis: the replica that holds it will charge its reservation",
			"team", team, "response_id", id, "error", err)
	}
}

// billingPart returns what the holder of a background response needs of
// body, a response object, to settle it (settleObject): its id, status,
// model, service tier, usage and tools, and of its output the items that
// are not the model's text (a message, a reasoning item) — the hosted
// tools' calls, whose fees it bills. Not the answer's text, which can be
// megabytes and which the shared store need not keep. Nil when body is
// not a response object.
func billingPart(body []byte) []byte {
	var o struct {
		ID          string            `json:"id"`
		Status      string            `json:"status"`
		Model       string            `json:"model,omitempty"`
		ServiceTier string            `json:"service_tier,omitempty"`
		Usage       json.RawMessage   `json:"usage,omitempty"`
		Tools       json.RawMessage   `json:"tools,omitempty"`
		Background  *bool             `json:"background,omitempty"`
		Output      []json.RawMessage `json:"output"`
	}
	if json.Unmarshal(body, &o) != nil {
		return nil
	}
	kept := o.Output[:0]
	for _, it := range o.Output {
		var item struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(it, &item) == nil && (item.Type == "message" || item.Type == "reasoning") {
			continue
		}
		kept = append(kept, it)
	}
	o.Output = kept
	b, err := json.Marshal(&o)
	if err != nil {
		return nil
	}
	return b
}

// get returns the answer another replica saw showing team's background
// response id done; nil when there is none (or Redis failed).
func (d *backgroundDone) get(ctx context.Context, team, id string) *responseObject {
	ctx, cancel := context.WithTimeout(ctx, backgroundDoneTimeout)
	defer cancel()
	body, err := d.rdb.Get(ctx, d.key(team, id)).Bytes()
	if err != nil {
		return nil
	}
	return sharedDone(body, id)
}

// getAll returns, by index, the answers other replicas saw showing done
// the responses of holds (nil: none), read in pipelines of
// backgroundDoneBatch within one backgroundDoneTimeout for them all: a
// Redis that does not answer holds a closing gateway one timeout, not
// one per response held.
func (d *backgroundDone) getAll(ctx context.Context, holds []*backgroundHold) []*responseObject {
	ctx, cancel := context.WithTimeout(ctx, backgroundDoneTimeout)
	defer cancel()
	out := make([]*responseObject, len(holds))
	// No pipeline is sent at the deadline, whose timer may not have fired
	// yet (middleware.Ended).
	for lo := 0; lo < len(holds) && !middleware.Ended(ctx); lo += backgroundDoneBatch {
		batch := holds[lo:min(lo+backgroundDoneBatch, len(holds))]
		cmds := make([]*goredis.StringCmd, len(batch))
		_, _ = d.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, bh := range batch {
				cmds[i] = p.Get(ctx, d.key(bh.team, bh.id))
			}
			return nil
		})
		for i, c := range cmds {
			if body, err := c.Bytes(); err == nil {
				out[lo+i] = sharedDone(body, batch[i].id)
			}
		}
	}
	return out
}

// backgroundDoneBatch is the number of shared answers getAll reads in one
// pipeline.
const backgroundDoneBatch = 64

// sharedDone reads body, an answer shared through Redis, as the response
// id done; nil when it is not.
func sharedDone(body []byte, id string) *responseObject {
	var o responseObject
	if json.Unmarshal(body, &o) != nil || o.ID != id || !doneResponse(&o) {
		return nil
	}
	return &o
}

// finish ends h, the hold of team's background response id not seen done
// by this replica: at the usage of the answer another replica saw (with
// Redis), else at its reservation.
func (b *backgroundHolds) finish(ctx context.Context, team, id string, h *responsesHold) {
	var o *responseObject
	if b.done != nil {
		o = b.done.get(ctx, team, id)
	}
	b.finishAt(ctx, team, id, h, o)
}

// finishAt ends h at o, the answer another replica saw showing it done,
// or at its reservation when o is nil.
func (b *backgroundHolds) finishAt(ctx context.Context, team, id string, h *responsesHold, o *responseObject) {
	if o != nil {
		h.settleObject(ctx, o)
		return
	}
	h.s.logger.Warn("tokenwise/gateway: a background response not seen done in time: charged its reservation", "team", team, "response_id", id)
	h.chargeReserved(ctx, nil)
}

type backgroundHold struct {
	h        *responsesHold
	timer    *time.Timer
	team, id string
}

func backgroundKey(team, id string) string { return team + "\n" + id }

// keep keeps h, the hold of team's background response id, until take
// (or its ttl, or close) ends it; false when the gateway is closing (h is
// then the caller's to charge).
func (b *backgroundHolds) keep(team, id string, h *responsesHold) bool {
	var old *backgroundHold
	defer func() {
		if old != nil {
			// The same id again (a provider that reuses ids): the older
			// hold is charged its reservation.
			old.h.chargeReserved(context.Background(), nil)
		}
	}()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shut {
		return false
	}
	if b.holds == nil {
		b.holds = map[string]*backgroundHold{}
	}
	k := backgroundKey(team, id)
	if old = b.holds[k]; old != nil {
		old.timer.Stop()
	}
	bh := &backgroundHold{h: h}
	bh.timer = time.AfterFunc(b.ttl, func() {
		if b.takeEnding(team, id, bh) {
			defer b.ending.Done()
			b.finish(context.Background(), team, id, h)
		}
	})
	b.holds[k] = bh
	bh.team, bh.id = team, id
	return true
}

// take removes and returns the hold of team's background response id
// (only bh's when bh is not nil); nil when there is none.
func (b *backgroundHolds) take(team, id string, bh *backgroundHold) *responsesHold {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := backgroundKey(team, id)
	cur := b.holds[k]
	if cur == nil || bh != nil && cur != bh {
		return nil
	}
	delete(b.holds, k)
	cur.timer.Stop()
	return cur.h
}

// takeEnding removes bh, the hold of team's background response id whose
// ttl ended, and counts it in ending (for close to wait for its settle);
// false when it is no longer held.
func (b *backgroundHolds) takeEnding(team, id string, bh *backgroundHold) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := backgroundKey(team, id)
	if b.holds[k] != bh {
		return false
	}
	delete(b.holds, k)
	b.ending.Add(1)
	return true
}

// has reports whether team's background response id is held.
func (b *backgroundHolds) has(team, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holds[backgroundKey(team, id)] != nil
}

// close ends every hold kept — at the usage another replica saw, read
// from Redis in one bounded read for them all, else at its reservation —
// and waits for those whose ttl ended to be settled; later ones are not
// kept.
func (b *backgroundHolds) close() {
	b.mu.Lock()
	b.shut = true
	holds := b.holds
	b.holds = nil
	b.mu.Unlock()
	all := make([]*backgroundHold, 0, len(holds))
	for _, bh := range holds {
		bh.timer.Stop()
		all = append(all, bh)
	}
	var done []*responseObject
	if b.done != nil && len(all) > 0 {
		done = b.done.getAll(context.Background(), all)
	}
	for i, bh := range all {
		var o *responseObject
		if done != nil {
			o = done[i]
		}
		b.finishAt(context.Background(), bh.team, bh.id, bh.h, o)
	}
	b.ending.Wait() // the holds whose ttl ended just before
}

// settleBackgroundStream reads resp, a retrieval of team's background
// response id as a stream of its events (GET /v1/responses/{id} with
// stream=true), as the client reads it: its final event, which shows the
// response done, settles the hold as a JSON retrieval's answer does (or,
// held by another replica, is shared with it). A stream that ends without
// its final event is passed on ending in the cut event, as a Responses
// call's stream is, and leaves the hold as it was: the response may still
// be running.
func (s *Server) settleBackgroundStream(resp *http.Response, team, id string) {
	unsized(resp)
	ctx := context.WithoutCancel(resp.Request.Context())
	var final *responseObject
	rs := &responsesStream{src: resp.Body, feeItems: true, cut: func(error) {}}
	rs.final = func(o *responseObject) { final = o }
	rs.finalRaw = func(raw []byte) {
		if final == nil || final.ID != id || !doneResponse(final) {
			return
		}
		if h := s.background.take(team, id, nil); h != nil {
			h.settleObject(ctx, final)
		} else if d := s.background.done; d != nil && final.Background != nil && *final.Background && len(raw) <= maxSharedDone {
			d.put(ctx, s.logger, team, id, raw)
		}
	}
	resp.Body = rs
}

// background reports whether req asks for a background response (a
// background member that is not false: one that is not a boolean, which
// the provider refuses, is read as one too).
func (req *responsesRequest) background() bool {
	b, ok := rawBool(req.Background)
	return b || !ok
}

// pendingResponse reports whether o, a Responses answer, is a response
// that is not done (queued or in progress: a background response) and
// has no usage yet: none, or one that counts nothing (zeros, as some
// servers write the usage of a response that has not run), which is no
// bill of what the response will use.
func pendingResponse(o *responseObject) bool {
	if o.ID == "" {
		return false
	}
	if _, counts := o.Usage.usage(); counts {
		return false
	}
	return o.Status == "queued" || o.Status == "in_progress"
}

// doneResponse reports whether o's status is final.
func doneResponse(o *responseObject) bool {
	switch o.Status {
	case "completed", "incomplete", "failed", "cancelled":
		return true
	}
	return false
}

// backgroundPath returns the response id of a retrieval (GET
// /v1/responses/{id}) or a cancellation (POST /v1/responses/{id}/cancel)
// of a response.
func backgroundPath(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/responses/")
	if !ok || rest == "" {
		return "", false
	}
	switch r.Method {
	case http.MethodGet:
		// (Read as JSON, or with stream=true as a stream of its events.)
		if strings.Contains(rest, "/") {
			return "", false
		}
		return rest, true
	case http.MethodPost:
		id, ok := strings.CutSuffix(rest, "/cancel")
		return id, ok && id != "" && !strings.Contains(id, "/")
	}
	return "", false
}

// settleBackground is the answer's hook of a retrieval or cancellation of
// team's held background response id: a JSON answer that shows it done
// settles its hold (at its usage), then the answer is passed on as it
// came; any other answer passes as an unpoliced one does (maskErrors).
func (s *Server) settleBackground(team, id string) func(*http.Response) error {
	return func(resp *http.Response) error {
		if resp.StatusCode == http.StatusOK && isEventStream(resp) {
			s.settleBackgroundStream(resp, team, id)
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			return s.maskErrors(resp)
		}
		body, whole, err := readAnswer(resp, maxResponsesEvent)
		if !whole || err != nil {
			return err
		}
		var o responseObject
		if json.Unmarshal(body, &o) != nil || o.ID != id || !doneResponse(&o) {
			return nil
		}
		if h := s.background.take(team, id, nil); h != nil {
			h.settleObject(context.WithoutCancel(resp.Request.Context()), &o)
		} else if d := s.background.done; d != nil && o.Background != nil && *o.Background && len(body) <= maxSharedDone {
			// Another replica may hold it.
			d.put(resp.Request.Context(), s.logger, team, id, body)
		}
		return nil
	}
}
