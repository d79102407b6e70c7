package openaitest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const chatPath = "/chat/completions"

// ServeHTTP answers POST requests to any path ending in "/chat/completions"
// (such as "/v1/chat/completions") and records every request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	rec := Recorded{
		Time:   time.Now(),
		Method: r.Method,
		Path:   r.URL.Path,
		Header: r.Header.Clone(),
		Body:   body,
		Rule:   -1,
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), chatPath) {
		seq := s.record(rec)
		writeError(w, seq, http.StatusNotFound, nil, &APIError{
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path),
			Type:    "invalid_request_error",
		})
		return
	}
	chat, err := decodeRequest(body)
	if err != nil {
		seq := s.record(rec)
		writeError(w, seq, http.StatusBadRequest, nil, &APIError{
			Message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.) openaitest: " + err.Error(),
			Type:    "invalid_request_error",
		})
		return
	}
	rec.Chat = chat
	rep, seq, ok := s.pick(rec)
	if !ok {
		writeError(w, seq, http.StatusBadRequest, nil, &APIError{
			Message: unmatchedMessage(seq, chat),
			Type:    "invalid_request_error",
			Code:    "openaitest_unmatched",
		})
		return
	}
	serve(r.Context(), w, chat, rep, seq)
}

func unmatchedMessage(seq int, chat *ChatRequest) string {
	last := chat.LastMessage()
	text := last.Content.String()
	if utf8.RuneCountInString(text) > 80 {
		text = string([]rune(text)[:80]) + "..."
	}
	return fmt.Sprintf("tokenwise/openaitest: no rule matches request #%d (model %q, stream %t, %d messages, last %q message %q, %d tools); add one with Server.On or set Server.Default",
		seq, chat.Model, chat.Stream, len(chat.Messages), last.Role, text, len(chat.Tools))
}

// serve writes rep as the answer to req.
func serve(ctx context.Context, w http.ResponseWriter, req *ChatRequest, rep Reply, seq int) {
	if !wait(ctx, rep.Latency) {
		return
	}
	if rep.Fault.Kind == FaultStall {
		<-ctx.Done()
		return
	}
	if rep.RetryAfter > 0 {
		secs := (rep.RetryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	if rep.Error != nil || rep.Status >= http.StatusBadRequest {
		status, apiErr := rep.Status, rep.Error
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if apiErr == nil {
			apiErr = &APIError{Message: http.StatusText(status), Type: "invalid_request_error"}
			if status >= http.StatusInternalServerError {
				apiErr.Type = "server_error"
			}
		}
		writeError(w, seq, status, rep.Header, apiErr)
		return
	}
	if rep.Body != nil && !req.Stream {
		setHeaders(w, seq, "application/json", rep.Header)
		w.Header().Set("Content-Length", strconv.Itoa(len(rep.Body)))
		_, _ = w.Write(rep.Body)
		return
	}
	a := newAnswer(req, rep, seq)
	if req.Stream {
		a.stream(ctx, w)
	} else {
		a.complete(ctx, w)
	}
}

// wait waits for d or until ctx is done, and reports whether ctx is still
// alive. The timer is stopped on return, so nothing is left behind.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func setHeaders(w http.ResponseWriter, seq int, contentType string, extra http.Header) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Request-Id", "req_openaitest_"+strconv.Itoa(seq))
	for k, v := range extra {
		h[http.CanonicalHeaderKey(k)] = v
	}
}

func writeError(w http.ResponseWriter, seq, status int, extra http.Header, e *APIError) {
	body, _ := json.Marshal(wireError{Error: wireErrorBody{
		Message: e.Message,
		Type:    e.Type,
		Param:   nullable(e.Param),
		Code:    nullable(e.Code),
	}})
	body = append(body, '\n')
	setHeaders(w, seq, "application/json", extra)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// answer is a successful reply being written for one request.
type answer struct {
	req     *ChatRequest
	rep     Reply
	seq     int
	id      string
	model   string
	created int64
	status  int
}

func newAnswer(req *ChatRequest, rep Reply, seq int) *answer {
	a := &answer{
		req:     req,
		rep:     rep,
		seq:     seq,
		id:      "chatcmpl-openaitest-" + strconv.Itoa(seq),
		model:   cmp.Or(rep.Model, req.Model),
		created: time.Now().Unix(),
		status:  cmp.Or(rep.Status, http.StatusOK),
	}
	a.rep = a.fill(rep, 0)
	if rep.Alternatives != nil {
		a.rep.Alternatives = make([]Reply, len(rep.Alternatives))
		for i, alt := range rep.Alternatives {
			a.rep.Alternatives[i] = a.fill(alt, i+1)
		}
	}
	return a
}

// fill gives the tool calls of choice ci their defaults and the reply its
// finish reason.
func (a *answer) fill(rep Reply, ci int) Reply {
	calls := rep.ToolCalls
	rep.ToolCalls = make([]ToolCall, len(calls))
	for i, c := range calls {
		c.ID = cmp.Or(c.ID, a.callID(ci, i))
		c.Type = cmp.Or(c.Type, "function")
		rep.ToolCalls[i] = c
	}
	rep.FinishReason = finishOf(rep)
	return rep
}

// callID is the default id of tool call i of choice ci.
func (a *answer) callID(ci, i int) string {
	if ci == 0 {
		return fmt.Sprintf("call_%d_%d", a.seq, i)
	}
	return fmt.Sprintf("call_%d_%d_%d", a.seq, ci, i)
}

func (a *answer) usage() *wireUsage {
	u := UsageFor(a.req, a.rep)
	w := &wireUsage{
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
	}
	w.PromptTokensDetails.CachedTokens = u.CachedTokens
	w.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return w
}

// complete writes a non-streaming chat.completion.
func (a *answer) complete(ctx context.Context, w http.ResponseWriter) {
	choices := []wireChoice{{Index: 0, Message: message(a.rep), FinishReason: a.rep.FinishReason}}
	for i, alt := range a.rep.Alternatives {
		choices = append(choices, wireChoice{Index: i + 1, Message: message(alt), FinishReason: alt.FinishReason})
	}
	body, _ := json.Marshal(wireCompletion{
		ID:                a.id,
		Object:            "chat.completion",
		Created:           a.created,
		Model:             a.model,
		Choices:           choices,
		Usage:             a.usage(),
		ServiceTier:       "default",
		SystemFingerprint: "fp_openaitest",
	})
	body = append(body, '\n')
	if a.rep.Raw != nil {
		body = bytes.Join(a.rep.Raw, nil)
	}
	setHeaders(w, a.seq, "application/json", a.rep.Header)
	rc := http.NewResponseController(w)

	switch a.rep.Fault.Kind {
	case FaultStallStream:
		w.WriteHeader(a.status)
		_ = rc.Flush()
		<-ctx.Done()
		return
	case FaultCut:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(a.status)
		_, _ = w.Write(body[:len(body)/2])
		_ = rc.Flush()
		panic(http.ErrAbortHandler)
	case FaultEOF, FaultMalformed:
		body = body[:len(body)/2]
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(body)
}

// message is the wire message of a filled reply.
func message(rep Reply) wireMessage {
	msg := wireMessage{Role: "assistant", ReasoningContent: rep.Reasoning}
	if rep.Content != "" || len(rep.ToolCalls) == 0 {
		msg.Content = &rep.Content
	}
	if rep.Refusal != "" {
		msg.Refusal = &rep.Refusal
	}
	for _, c := range rep.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, wireToolCall{
			ID:       c.ID,
			Type:     c.Type,
			Function: wireFunction{Name: c.Function.Name, Arguments: c.Function.Arguments},
		})
	}
	return msg
}

// chunks returns the JSON payloads of the stream, without "[DONE]".
func (a *answer) chunks() [][]byte {
	var usageNull json.RawMessage
	if a.req.IncludeUsage() {
		usageNull = json.RawMessage("null") // OpenAI sends "usage":null on every other chunk
	}
	var out [][]byte
	ci := 0
	add := func(delta wireDelta, finish *string) {
		b, _ := json.Marshal(wireChunk{
			ID:                a.id,
			Object:            "chat.completion.chunk",
			Created:           a.created,
			Model:             a.model,
			ServiceTier:       "default",
			SystemFingerprint: "fp_openaitest",
			Choices:           []wireChunkChoice{{Index: ci, Delta: delta, FinishReason: finish}},
			Usage:             usageNull,
		})
		out = append(out, b)
	}
	size := a.rep.ChunkSize
	if size <= 0 {
		size = DefaultChunkSize
	}

	for i, rep := range append([]Reply{a.rep}, a.rep.Alternatives...) {
		ci = i
		first := wireDelta{Role: "assistant"}
		if rep.Content != "" || len(rep.ToolCalls) == 0 {
			first.Content = new("")
		}
		add(first, nil)
		for _, p := range split(rep.Reasoning, size) {
			add(wireDelta{ReasoningContent: p}, nil)
		}
		for _, p := range split(rep.Refusal, size) {
			add(wireDelta{Refusal: p}, nil)
		}
		for _, p := range split(rep.Content, size) {
			add(wireDelta{Content: &p}, nil)
		}
		for i, c := range rep.ToolCalls {
			add(wireDelta{ToolCalls: []wireToolCallDelta{{
				Index: i, ID: c.ID, Type: c.Type,
				Function: wireFunctionDelta{Name: c.Function.Name},
			}}}, nil)
			for _, p := range split(c.Function.Arguments, size) {
				add(wireDelta{ToolCalls: []wireToolCallDelta{{
					Index: i, Function: wireFunctionDelta{Arguments: p},
				}}}, nil)
			}
		}
		add(wireDelta{}, &rep.FinishReason)
	}

	if a.req.IncludeUsage() {
		b, _ := json.Marshal(wireChunk{
			ID:                a.id,
			Object:            "chat.completion.chunk",
			Created:           a.created,
			Model:             a.model,
			ServiceTier:       "default",
			SystemFingerprint: "fp_openaitest",
			Choices:           []wireChunkChoice{},
			Usage:             mustJSON(a.usage()),
		})
		out = append(out, b)
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// split cuts s into pieces of n runes.
func split(s string, n int) []string {
	var out []string
	for s != "" {
		i, runes := 0, 0
		for i < len(s) && runes < n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			runes++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// stream writes the reply as server-sent events, flushing every line.
func (a *answer) stream(ctx context.Context, w http.ResponseWriter) {
	setHeaders(w, a.seq, "text/event-stream", a.rep.Header)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(a.status)
	rc := http.NewResponseController(w)
	if pieces := a.rep.Raw; pieces != nil || a.rep.Shape != nil {
		if pieces == nil {
			pieces = a.shapedStream(a.rep.Shape)
		}
		for i, p := range pieces {
			if i > 0 && !wait(ctx, a.rep.ChunkLatency) {
				return
			}
			if _, err := w.Write(p); err != nil || rc.Flush() != nil {
				return
			}
		}
		return
	}
	chunks := a.chunks()

	sent := 0
	send := func(data []byte) bool {
		if sent > 0 && !wait(ctx, a.rep.ChunkLatency) {
			return false
		}
		sent++
		line := make([]byte, 0, len(data)+8)
		line = append(append(append(line, "data: "...), data...), "\n\n"...)
		if _, err := w.Write(line); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	fault := a.rep.Fault
	strike := min(max(fault.After, 0), len(chunks))
	for i := 0; i <= len(chunks); i++ {
		if i == strike {
			switch fault.Kind {
			case FaultStallStream:
				_ = rc.Flush()
				<-ctx.Done()
				return
			case FaultCut:
				_ = rc.Flush()
				panic(http.ErrAbortHandler)
			case FaultEOF:
				return
			case FaultMalformed:
				broken := chunks[min(i, len(chunks)-1)]
				if !send(broken[:len(broken)/2]) {
					return
				}
			}
		}
		if i == len(chunks) {
			send([]byte("[DONE]"))
			return
		}
		if !send(chunks[i]) {
			return
		}
	}
}
