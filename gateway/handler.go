package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/internal/sendtrack"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
)

// RunIDHeader carries the run id of a call: every call of one run (an agent
// task) shares its per-run budget, call limit and deadline. Without it,
// each request is a run of its own.
const RunIDHeader = "X-Run-Id"

// CallIDHeader is the response header with the gateway's id of the call,
// which its log line carries too.
const CallIDHeader = "X-Tokenwise-Call-Id"

// maxRunID bounds a run id's length.
const maxRunID = 128

func getenv(k string) string { return os.Getenv(k) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler)
	mux.HandleFunc("POST /v1/chat/completions", s.authed(s.chat))
	mux.HandleFunc("GET /v1/models", s.authed(s.models))
	mux.HandleFunc("GET /v1/spend", s.authed(s.spend))
	mux.HandleFunc("GET /v1/runs/{id...}", s.authed(s.runReport))
	mux.HandleFunc("/v1/", s.authed(s.passThrough))
	// The gateway's own endpoints answer another method with a 405 that
	// names theirs: none is an OpenAI endpoint to pass upstream.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/spend", "/v1/runs/"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			errMethodNotAllowed.write(w)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if root, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); apiRoots[root] {
			// A client whose base URL is the gateway's address without
			// /v1 (the LiteLLM proxy serves both): the same route under
			// /v1.
			r2 := r.WithContext(r.Context())
			u := *r.URL
			u.Path, u.RawPath = "/v1"+r.URL.Path, ""
			if r.URL.RawPath != "" {
				u.RawPath = "/v1" + r.URL.RawPath // its escapes kept: the upstream gets the path as sent
			}
			r2.URL = &u
			mux.ServeHTTP(w, r2)
			return
		}
		errNoRoute.write(w)
	})
	return s.timed(s.withCORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := methodError(r.Method); e != nil {
			s.refuse(w, e)
			return
		}
		if e := pathError(r.URL); e != nil && !runReportPath(r) {
			s.refuse(w, e)
			return
		}
		mux.ServeHTTP(w, r)
	})))
}

// methodError refuses a request whose method is a standard one written in
// another case ("post", "Post"): methods are case-sensitive, so the
// gateway's routes and its policing (which compare it with "POST") do not
// read it as the method, while an upstream that serves a path whatever
// its method, or reads the method without regard to case, would serve it
// as that method: "post /v1/chat/completions" was passed on unpoliced, a
// chat completion no budget saw. nil: the method is as it is written.
func methodError(m string) *apiError {
	u := strings.ToUpper(m)
	if u == m {
		return nil
	}
	switch u {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
	default:
		return nil // another method: no route serves it as one of these
	}
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_method", NoRetry: true,
		Message: "tokenwise/gateway: the request method " + strconv.Quote(m) + " is " + u + " in another case: refused, as methods are " +
			"case-sensitive and an upstream could serve it as " + u + " where the gateway does not police it (send it as " + u + ")"}
}

// runReportPath reports whether r asks for a run's report (GET
// /v1/runs/{id}, or /runs/{id}), which the gateway answers itself,
// forwarding nothing: a run id is any text (X-Run-Id), its slashes sent
// escaped (%2F) and dots as they are.
func runReportPath(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.HasPrefix(r.URL.Path, "/v1/runs/") || strings.HasPrefix(r.URL.Path, "/runs/")
}

// pathError refuses a request path that the gateway would classify as
// one path and its upstream could read as another: a '.' or '..' segment
// (written %2E, which the router does not clean, or plain), an empty
// segment other than a trailing slash, a backslash, or an encoded slash
// (%2F). The gateway polices a call by its decoded path and sends that
// path as it is (upstream.urlFor); an upstream, or a proxy before it,
// that resolves such segments would serve another endpoint than the one
// policed (POST /v1/responses/%2E is a Responses call), or one outside
// the upstream's base path. nil: the path is plain.
func pathError(u *url.URL) *apiError {
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		return nil // "*" (OPTIONS *), or a CONNECT's empty path: no route serves them
	}
	problem := ""
	lower := strings.ToLower(u.RawPath)
	switch {
	case strings.Contains(lower, "%2f"):
		problem = "an encoded slash (%2F)"
	case strings.Contains(p, `\`):
		problem = "a backslash"
	default:
		problem = segmentProblem(p[1:])
	}
	if problem == "" {
		return nil
	}
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_path",
		Message: "tokenwise/gateway: the request path has " + problem + ": refused, as the gateway polices a path as it is and " +
			"an upstream could resolve it to another endpoint (send the path without dot segments, empty segments, backslashes or encoded slashes)"}
}

// apiRoots are the first path segments of the OpenAI API (and of the
// gateway's own /v1 endpoints), which the gateway also serves without the
// /v1 prefix.
var apiRoots = map[string]bool{
	"chat": true, "completions": true, "responses": true, "conversations": true, "embeddings": true, "models": true,
	"moderations": true, "images": true, "audio": true, "files": true, "uploads": true, "batches": true,
	"fine_tuning": true, "vector_stores": true, "assistants": true, "threads": true, "realtime": true,
	"videos": true, "containers": true, "evals": true, "spend": true, "runs": true,
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "shutting down\n")
		return
	}
	if s.rdb != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "redis unavailable\n")
			return
		}
	}
	_, _ = io.WriteString(w, "ready\n")
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	if k := r.Header.Get("Api-Key"); k != "" { // Azure-style clients
		return k
	}
	return ""
}

// authed checks the virtual key and calls h with its entry. A missing or
// unknown key gets OpenAI's 401 (the key is never echoed nor logged).
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, keyEntry)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if k, ok := r.Context().Value(inProcessTeam{}).(*keyEntry); ok {
			h(w, r, *k) // Server.TransportFor's caller: its team, without a key
			return
		}
		tok := bearer(r)
		k, ok := s.keys.Load().lookup(tok)
		k.token = tok
		if !ok {
			s.metrics.request("unauthorized")
			s.logger.Warn("tokenwise/gateway: request refused: unknown or missing key", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			errUnauthorized.write(w)
			return
		}
		h(w, r, k)
	}
}

// isHop reports whether a (canonical) header is not forwarded upstream
// (nor back): the hop-by-hop headers, the caller's credentials and the
// gateway's own headers.
func isHop(k string) bool {
	switch k {
	case "Authorization", "Api-Key", "X-Api-Key", "Cookie", "Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Accept-Encoding", "Host", RunIDHeader,
		// The gateway has the whole body before it calls the upstream: a
		// 100-continue expectation there would only hold the body back
		// until the upstream's 100 Continue (a round trip; a second with
		// a server that sends none).
		"Expect":
		return true
	}
	return false
}

// dropVirtualKey deletes from h every header with a value that holds the
// caller's virtual key token (one of 8 bytes or more, which a search does
// not confuse with ordinary text): a client that sends its key in a header
// of its own choosing never has it forwarded upstream.
func dropVirtualKey(h http.Header, token string) {
	if len(token) < 8 {
		return
	}
	for k, vs := range h {
		if slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, token) }) {
			delete(h, k)
		}
	}
}

// outHeader returns the caller's headers to send upstream, with the
// upstream's key; a header holding token, the caller's virtual key, is
// not sent (dropVirtualKey). The values are shared with in (never modified), and
// those of the upstream's key and of the JSON headers with every request
// (nobody modifies a request's header values).
//
// Content-Type and Accept are set as the transport sends a chat
// completion upstream in any case (application/json; Accept
// text/event-stream for a stream): with them already so, the transport
// sends this map as it is instead of a copy of its own.
func outHeader(in http.Header, up *upstream, token string) http.Header {
	h := make(http.Header, len(in)+2)
	for k, v := range in {
		if !isHop(http.CanonicalHeaderKey(k)) {
			h[k] = v
		}
	}
	// The headers the caller's Connection header names are hop-by-hop too.
	for _, v := range in["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
	dropVirtualKey(h, token)
	h["Content-Type"], h["Accept"] = jsonValue, jsonValue
	up.credentials(h)
	return h
}

// segmentProblem names the first dot segment ('.' or '..') or empty
// segment (but the last: a trailing slash) of path, the part of a
// request's path after its leading slash, or returns "". (It walks the
// path in place: strings.Split's slice of segments was an allocation of
// every request.)
func segmentProblem(path string) string {
	for {
		seg, rest, more := strings.Cut(path, "/")
		if seg == "." || seg == ".." {
			return "a '" + seg + "' segment"
		}
		if !more {
			return ""
		}
		if seg == "" {
			return "an empty segment (//)"
		}
		path = rest
	}
}

// urlFor returns the upstream's URL of a passed-through request's URL in
// (a /v1/ path that pathError let through): the base URL's path followed
// by in's path after its first segment (/v1), escapes kept, neither
// resolved nor cleaned, so that the upstream is sent exactly the path the
// gateway classified and policed, under its base path. (url.JoinPath, used
// before, resolved '.' and '..', which a request could send encoded as
// %2E: /v1/responses/%2E went upstream as /responses, unpoliced.)
func (up *upstream) urlFor(in *url.URL) *url.URL {
	u := *up.base
	u.Path = strings.TrimSuffix(up.base.Path, "/") + afterFirstSegment(in.Path)
	u.RawPath = strings.TrimSuffix(up.base.EscapedPath(), "/") + afterFirstSegment(in.EscapedPath())
	return &u
}

// joinQuery is the query of a request to an upstream: its base URL's (an
// Azure deployment's api-version), then the client's.
func joinQuery(base, client string) string {
	switch {
	case base == "":
		return client
	case client == "":
		return base
	}
	return base + "&" + client
}

// afterFirstSegment returns p ("/v1/files/x") without its first segment
// ("/files/x"); "" when it has one only.
func afterFirstSegment(p string) string {
	if i := strings.IndexByte(p[min(1, len(p)):], '/'); i >= 0 {
		return p[i+1:]
	}
	return ""
}

// jsonValue is the value of the Content-Type and Accept headers of a chat
// completion sent upstream, shared by every request's header map.
var jsonValue = []string{"application/json"}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, k keyEntry) {
	start := time.Now()
	callID := newID("call-")
	runID := r.Header.Get(RunIDHeader)
	if !validRunID(runID) {
		errInvalidRunID.write(w)
		return
	}
	if encodedBody(r) {
		s.refuse(w, errEncodedBody)
		return
	}
	// The team and the run: one allocation with the context.
	var ctx context.Context
	if runID == "" {
		// A run of its own, named callID, which no later request can
		// join: it is not remembered.
		ctx, _ = middleware.StartTeamRun(r.Context(), k.team, callID)
		runID = callID
	} else {
		ctx = middleware.WithTeamRun(r.Context(), k.team, s.runs.get(r.Context(), runKey(k.team, runID), runID))
	}
	// The call's attributes are only formatted for a line that is logged
	// (the hot lines check logs first: not even their arguments are made
	// otherwise).
	logs := func(level slog.Level) bool { return s.logger.Enabled(context.Background(), level) }
	log := func(level slog.Level, msg string, args ...any) {
		if logs(level) {
			s.logger.Log(context.Background(), level, msg, append([]any{"team", k.team, "key", k.name, "run_id", runID, "call_id", callID}, args...)...)
		}
	}
	tooLarge := func() {
		s.metrics.request("too_large")
		errTooLarge.write(w)
	}
	maxBody := s.maxBody()
	if r.ContentLength > maxBody {
		tooLarge()
		return
	}
	// The body is read once, by the transport (into a buffer of its
	// length), unless the length is unknown (chunked). The upstream of a
	// call is that of the model the chain settles on (Server.route): the
	// first one is only the URL the transport is handed.
	body, size := io.Reader(r.Body), r.ContentLength
	if size <= 0 {
		b, err := io.ReadAll(http.MaxBytesReader(httpWriter(w), r.Body, maxBody))
		if err != nil {
			e := bodyError(err)
			if e == errTooLarge {
				tooLarge()
				return
			}
			// A body cut or badly framed (a chunk's size line), or one that
			// did not come in time (a 408): the call cannot be served, and
			// its client is told so, as a passed-through call's is
			// (readPassBody).
			log(slog.LevelWarn, "tokenwise/gateway: reading the request", "err", err)
			s.refuse(w, e)
			return
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	if size == 0 {
		// No body: the request the transport would get is not a chat
		// completion it runs through the chain (http.NoBody), and would
		// pass upstream unpoliced.
		s.metrics.request(errEmptyBody.Code)
		errEmptyBody.write(w)
		return
	}
	up := s.pick("")
	var out *http.Request
	// A stored chat completion (store: true) is its team's
	// (objects_owner.go): the chain notes it as the transport decodes the
	// request (noteStored).
	// It also checks the ids the body names: another team's file part or
	// fine-tuned model (bodyids.go).
	stored := withStoredNote(ctx, s, k.team)
	ctx = stored
	if rc, ok := body.(io.ReadCloser); ok {
		out = up.newChat(ctx, rc)
	} else {
		var err error
		if out, err = http.NewRequestWithContext(ctx, http.MethodPost, up.chat, body); err != nil {
			classify(err, s.secrets...).write(w)
			return
		}
	}
	out.Header = outHeader(r.Header, up, k.token)
	out.ContentLength = size
	w.Header().Set(CallIDHeader, callID)
	resp, err := s.tr.RoundTrip(out)
	if err != nil {
		e := classify(err, s.secrets...)
		s.metrics.request(e.Code)
		if logs(slog.LevelInfo) {
			log(slog.LevelInfo, "tokenwise/gateway: call refused", "status", e.Status, "code", e.Code, "err", e.Message, "ms", since(start))
		}
		e.write(w)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		shapeError(resp, s.secrets)
	}
	s.recordStoredChat(r.Context(), k.team, stored.Load(), resp)
	h := w.Header()
	for k, v := range resp.Header {
		if ck := http.CanonicalHeaderKey(k); !isHop(ck) && !isCORS(ck) {
			h[k] = v
		}
	}
	sse := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if !sse && resp.ContentLength >= 0 {
		h["Content-Length"] = contentLength(resp)
	}
	if sse {
		// Each write of the stream waits for the client as long as the
		// team's policy lets the stream wait for its upstream, when it
		// says (timeouts.idle); else limits.write_timeout.
		setWriteTimeout(w, s.pol.Policy(k.team).Timeouts.Idle.Duration())
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	n, err := copyFlush(w, rc, resp.Body, sse)
	if wf := writeFailure(w); err != nil && (isWriteFailure(err) || wf != nil || s.clientGone(r.Context())) {
		msg := "tokenwise/gateway: answer cut: the client did not read it"
		switch {
		case wf != nil:
			err = &writeError{wf}
		case !isWriteFailure(err):
			// The client closed its connection (or, in process, its
			// context ended) between two writes: the chain's read failed
			// with its context's end, which is no failure of the
			// upstream's. No error event: there is no one to read it.
			msg = "tokenwise/gateway: answer cut: the client went away"
		}
		// The client stopped taking the answer in (the write timed out)
		// or went away: net/http cancelled the request's context, which
		// ends the chain (the upstream call, the budget's hold settled)
		// as the body's Close (deferred) returns. Nothing more can be
		// written.
		s.metrics.request("client_gone")
		log(slog.LevelWarn, msg, "status", resp.StatusCode, "stream", sse,
			"err", redact.Mask(err.Error(), s.secrets...), "bytes", n, "ms", since(start))
		return
	}
	if err != nil && sse {
		// The chain failed after the first chunk: say so in the stream
		// (the official SDKs raise an "error" event as an APIError) and
		// end without [DONE], so that no client takes it for complete.
		e := classify(err, s.secrets...)
		ev := append(append([]byte("data: "), e.body()...), '\n', '\n')
		_, _ = w.Write(ev)
		_ = rc.Flush()
		s.metrics.request(e.Code)
		log(slog.LevelWarn, "tokenwise/gateway: stream failed", "status", resp.StatusCode, "code", e.Code, "err", e.Message, "bytes", n, "ms", since(start))
		return
	}
	s.metrics.request(passOutcome(true, resp.StatusCode))
	if err != nil {
		log(slog.LevelWarn, "tokenwise/gateway: response cut", "status", resp.StatusCode, "err", redact.Mask(err.Error(), s.secrets...), "ms", since(start))
		return
	}
	if logs(slog.LevelInfo) {
		log(slog.LevelInfo, "tokenwise/gateway: call", "status", resp.StatusCode, "stream", sse, "cache", resp.Header.Get("X-Tokenwise-Cache"), "bytes", n, "ms", since(start))
	}
}

// passOutcome is the outcome a call answered with status counts under:
// a call the gateway polices (chat, Responses, embeddings) "ok", or
// "upstream_error" for an error status (the upstream's error answer, or
// the gateway's 502 when the upstream could not be reached); any other
// "pass_through". (A chat stream that fails after its first chunk is
// counted by the failure's code before this.)
func passOutcome(policed bool, status int) string {
	switch {
	case !policed:
		return "pass_through"
	case status >= 400:
		return "upstream_error"
	}
	return "ok"
}

// statusWriter is a ResponseWriter that keeps the status written through
// it (0: none yet). Unwrap lets http.ResponseController reach the
// writer's Flush and Hijack.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// copyFlush copies body to w, flushing after each read when streaming. A
// stream's failed write or flush (the client's failure) is a *writeError
// (a whole answer's, writeFailure(w) tells).
func copyFlush(w io.Writer, rc *http.ResponseController, body io.Reader, flush bool) (int64, error) {
	if !flush {
		return io.Copy(w, body) // a whole answer: one write from its bytes
	}
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		m, err := body.Read(buf)
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, &writeError{werr}
			}
			n += int64(m)
			if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
				return n, &writeError{ferr}
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// streamBufs are the read buffers of streams.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func (s *Server) maxBody() int64 {
	if s.cfg.Limits.MaxBody > 0 {
		return int64(s.cfg.Limits.MaxBody)
	}
	return DefaultMaxBody
}

func (s *Server) upstreamIdle() time.Duration {
	if d := s.cfg.Limits.UpstreamIdle.Duration(); d > 0 {
		return d
	}
	return DefaultUpstreamIdle
}

func (s *Server) maxUpload() int64 {
	if s.cfg.Limits.MaxUpload > 0 {
		return int64(s.cfg.Limits.MaxUpload)
	}
	return DefaultMaxUpload
}

// unpolicedEndpoints are the billable endpoints the gateway does not
// police, by the path after /v1 (a prefix ending in "/" names a family:
// the path itself and every path under it): legacy completions, images,
// audio, batches, fine-tuning, realtime (a session, its client secrets,
// calls and transcription sessions), videos (a remix too), the Responses
// API's compaction (a model call), code interpreter containers (billed
// per container), the Decisions API (a model call), Managed Agents
// sessions (created, or a turn) and automations (created, invoked,
// resumed: each runs the agent's model calls), ChatKit sessions (a client
// secret that spends on the upstream's key, as a Realtime one does), and
// eval runs and Assistants runs (whose model calls are billed; matched by
// unpolicedPath), and what adds to a vector store's storage (billed by the
// GB-day: a vector store made, a file or a file batch added; unpolicedPath).
var unpolicedEndpoints = []string{"/completions", "/images/", "/audio/", "/batches", "/fine_tuning/", "/realtime/", "/videos/",
	"/responses/compact", "/containers", "/decisions", "/agents/sessions/", "/agents/automations/", "/chatkit/sessions",
	"/threads/runs"}

// unpolicedPath reports whether path (after /v1, without a trailing
// slash) is that of a billable endpoint the gateway does not police.
func unpolicedPath(path string) bool {
	if strings.HasSuffix(path, "/cancel") || strings.HasSuffix(path, "/pause") {
		// What stops spending (a fine-tuning job's or a run's
		// cancellation, an automation's pause) costs nothing.
		return false
	}
	for _, e := range unpolicedEndpoints {
		if inFamily(path, e) {
			return true
		}
	}
	// /evals/{id}/runs: a run of an eval calls its models.
	if rest, ok := strings.CutPrefix(path, "/evals/"); ok {
		_, after, _ := strings.Cut(rest, "/")
		return after == "runs" || strings.HasPrefix(after, "runs/")
	}
	// A vector store made, or a file or file batch added to one: its
	// storage is billed by the GB-day on the upstream's key.
	if path == "/vector_stores" {
		return true
	}
	if rest, ok := strings.CutPrefix(path, "/vector_stores/"); ok {
		_, after, _ := strings.Cut(rest, "/")
		return after == "files" || after == "file_batches"
	}
	// /threads/{id}/runs: an Assistants run, created or given its tool
	// outputs, calls its assistant's model.
	if rest, ok := strings.CutPrefix(path, "/threads/"); ok {
		_, after, _ := strings.Cut(rest, "/")
		return after == "runs" || strings.HasPrefix(after, "runs/")
	}
	return false
}

// assistantOrThread reports whether path (after /v1, without a trailing
// slash) is that of the assistants or the threads, or of one of them:
// what a POST makes or changes.
func assistantOrThread(path string) bool {
	for _, f := range []string{"/assistants", "/threads"} {
		if rest, ok := strings.CutPrefix(path, f); ok && (rest == "" || rest[0] == '/' && !strings.Contains(rest[1:], "/") && rest != "/runs") {
			return true
		}
	}
	return false
}

// inFamily reports whether path is e, or under it when e ends in "/".
func inFamily(path, e string) bool {
	return path == strings.TrimSuffix(e, "/") || strings.HasSuffix(e, "/") && strings.HasPrefix(path, e)
}

// modelCallPaths are the families of the model calls the gateway polices
// as HTTP requests (a POST read whole), by the path after /v1: a
// connection upgraded there (a WebSocket) would carry calls it never
// reads.
var modelCallPaths = []string{"/chat/completions/", "/responses/", "/embeddings/"}

// unpoliced refuses a billable request the gateway does not police when
// team's policy has a budget it would escape; nil otherwise. Billable: a
// POST to an unpoliced endpoint; any request to the Realtime API (a
// session is a GET upgraded to a WebSocket); any request that asks for a
// connection upgrade (an Upgrade header) to an unpoliced endpoint or a
// model call's path.
func (s *Server) unpoliced(r *http.Request, team string) *apiError {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1"), "/")
	upgrade := r.Header.Get("Upgrade") != ""
	billable := r.Method == http.MethodPost && unpolicedPath(path) || inFamily(path, "/realtime/")
	if upgrade && !billable {
		billable = unpolicedPath(path) || slices.ContainsFunc(modelCallPaths, func(e string) bool { return inFamily(path, e) })
	}
	budgeted := func() bool { pl := s.passLimitsOf(team); return pl.err == nil && pl.budget != nil }
	if !billable && r.Method == http.MethodPost && !upgrade && assistantOrThread(path) && budgeted() {
		// An assistant or a thread made or changed with
		// tool_resources.file_search.vector_stores makes those vector
		// stores, billed as POST /vector_stores (vector_store_ids names
		// ones that exist). The body is read for the name (up to
		// maxBody) and passed on whole.
		b, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody()+1))
		rest := io.Reader(r.Body)
		if err != nil {
			rest = errReader{err}
		}
		r.Body = readCloser{io.MultiReader(bytes.NewReader(b), rest), r.Body}
		billable = namesString(b, "vector_stores")
	}
	if !billable || !budgeted() {
		return nil
	}
	what := r.Method + " " + r.URL.Path
	if upgrade {
		what += " with a connection upgrade (a WebSocket)"
	}
	return &apiError{Status: http.StatusForbidden, Type: "permission_error", Code: "unpoliced_endpoint", NoRetry: true,
		Message: "tokenwise/gateway: " + what + " is not policed by the gateway (chat completions, embeddings and the Responses API are, as HTTP requests) " +
			"and team " + team + " has a budget it would escape: refused. The gateway file's pass_unpoliced: true lets it through."}
}

// maskErrors is the answer's hook of a passed-through call the gateway
// does not police (files, models, …): an error answer's body (status 400
// or more) is read, up to maxErrorBody (the rest is dropped), and passed on
// with the gateway's secrets — the upstreams' keys — and key-shaped
// strings masked (redact), its Content-Length said again: an upstream
// that echoes the credentials it was sent in an error page does not hand
// them to the caller. A body the upstream encoded (a Content-Encoding the
// transport did not decode), which cannot be searched, is replaced by an
// OpenAI error of its status. Other answers, streams among them, pass as
// they come.
func (s *Server) maskErrors(resp *http.Response) error {
	if resp.StatusCode < 400 || resp.Request != nil && resp.Request.Method == http.MethodHead {
		return nil
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		_ = resp.Body.Close()
		resp.Body = http.NoBody
		shapeError(resp, s.secrets) // (an empty body: says the status only)
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a cut body is passed on as far as it came
	_ = resp.Body.Close()
	replaceBody(resp, redact.Bytes(b, s.secrets...))
	return nil
}

// refuse answers a request with e, counted in the metrics by its code.
func (s *Server) refuse(w http.ResponseWriter, e *apiError) {
	s.metrics.request(e.Code)
	e.write(w)
}

// namedRun returns the run r's X-Run-Id names for team; nil for none (or
// an invalid id).
func (s *Server) namedRun(r *http.Request, team string) *middleware.Run {
	runID := r.Header.Get(RunIDHeader)
	if runID == "" || !validRunID(runID) {
		return nil
	}
	return s.runs.get(r.Context(), runKey(team, runID), runID)
}

// recordRefused reports a Responses call (req: nil when it named no model)
// that the gateway refused before it was sent (e): in run's record (nil:
// none named) as a failed call, as a chat call refused by its chain is,
// and to the team's observers.
func (s *Server) recordRefused(team string, run *middleware.Run, req *responsesRequest, start time.Time, e *apiError) {
	var f middleware.CallFacts
	if req != nil {
		f.RequestedModel, f.Model = cmp.Or(req.asked, req.Model), req.Model
	}
	s.reportRefused(team, run, f, start, e)
}

// reportRefused reports a passed-through call of facts f that the gateway
// refused before it was sent (e): in run's record (nil: none named) as a
// failed call, and to the team's observers.
func (s *Server) reportRefused(team string, run *middleware.Run, f middleware.CallFacts, start time.Time, e *apiError) {
	f.Team = team
	s.report(team, run, middleware.CallRecord{CallFacts: f, Latency: time.Since(start), Start: start, Err: e})
}

// readPassBody reads a passed-through request's body whole (to count
// what it costs) and gives it back to r; false, with the error written,
// when it cannot be read or is over the limit.
func (s *Server) readPassBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if encodedBody(r) {
		s.refuse(w, errEncodedBody)
		return nil, false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.refuse(w, bodyError(err))
		return nil, false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return body, true
}

// refuseBody answers a passed-through request whose body could not be
// read: tooLarge (the 413 of the limit its path has) when the body passed
// that limit, counted as too_large; else bodyError's answer.
func (s *Server) refuseBody(w http.ResponseWriter, err error, tooLarge *apiError) {
	if e := bodyError(err); e != errTooLarge {
		s.refuse(w, e)
		return
	}
	s.metrics.request("too_large")
	tooLarge.write(w)
}

// modelPath returns the model id of a /v1/models/{id} path (the path
// decoded, so an id escaped by the client reads as the upstream's list
// names it).
func modelPath(p string) (string, bool) {
	id, ok := strings.CutPrefix(strings.TrimSuffix(p, "/"), "/v1/models/")
	return id, ok && id != ""
}

// passThrough forwards any other /v1/ request to the first upstream (a
// model call or a model's retrieval: the upstream that serves the model),
// with the upstream's key instead of the virtual key.
func (s *Server) passThrough(w http.ResponseWriter, r *http.Request, k keyEntry) {
	client := r.Context() // the client's: its end is the client's going away
	if r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/chat/completions") {
		s.chat(w, r, k) // e.g. /v1/chat/completions/ with a trailing slash
		return
	}
	up := s.pick("")
	if id, ok := modelPath(r.URL.Path); ok {
		// A model's retrieval (or a fine-tuned model's deletion) goes to
		// the upstream that serves it, as a call to it would: /v1/models
		// lists the models of every upstream.
		up = s.pick(id)
	}
	start := time.Now()
	// The call's id, in its answer's X-Tokenwise-Call-Id and its log
	// lines, as a chat call's; its run is X-Run-Id's, else the call alone.
	callID := newID("call-")
	runID := cmp.Or(r.Header.Get(RunIDHeader), callID)
	if !validRunID(runID) {
		runID = "(invalid)" // refused below where a run counts; never logged as sent
	}
	w.Header().Set(CallIDHeader, callID)
	if !s.cfg.PassUnpoliced {
		// Before anything is read: a connection upgrade to a model call's
		// path is refused too, though its path is policed as a POST.
		if e := s.unpoliced(r, k.team); e != nil {
			s.refuse(w, e)
			return
		}
	}
	if id, ok := responsePathID(r); ok {
		// A stored response another team created is not this team's to
		// read, list, cancel or delete (responses_owner.go).
		if e := s.checkOwner(r.Context(), k.team, id); e != nil {
			s.refuse(w, e)
			return
		}
	}
	// An object of a family the gateway keeps to the team that created it
	// (a file, a batch, a vector store…: objects_owner.go): another
	// team's is not this team's to use, and a list has the team's own.
	owned, isOwned := ownedPath(r)
	if isOwned && owned.id != "" {
		if e := s.checkObject(r.Context(), k.team, owned.fam, owned.id); e != nil {
			s.refuse(w, e)
			return
		}
	}
	if id, ok := modelPath(r.URL.Path); ok && strings.HasPrefix(id, "ft:") {
		// Nor another team's fine-tuned model (bodyids.go).
		if e := s.checkObject(r.Context(), k.team, fineTunedModels, id); e != nil {
			s.refuse(w, e)
			return
		}
	}
	var modify func(*http.Response) error
	var bound *passBound    // the call's timeouts (passtimeout.go)
	var call *responsesCall // a Responses call's fallback chain (responses_fallback.go)
	var refused *apiError   // the chain's refusal of the call, written as its answer
	policed := false        // an embeddings or Responses call: counted by its answer's status
	// lost is what ended a call the proxy sent without an answer, when its
	// provider bills it (middleware.UnansweredBilled): its timeout, the client gone.
	var lost error
	// sent is the passed request's body as the proxy sends it: a call
	// that ended before the transport read it whole never reached the
	// upstream, and is not lost (nobody bills it).
	var sent *sendtrack.Tracker
	// A body the gateway reads to police it (embeddings, the Responses
	// API) is bounded by limits.max_body; any other (a file upload, an
	// audio file) is streamed to the upstream as it comes, bounded by
	// limits.max_upload: refused before it is sent when its length says
	// it is over, cut (a 413) when it comes over it.
	// A JSON body read whole for the ids it names (readsBodyIDs) is held
	// as a policed one is: bounded by limits.max_body.
	readsIDs := readsBodyIDs(r, isOwned)
	limit, tooLarge := s.maxBody(), errTooLarge
	if !isEmbeddings(r) && !isResponses(r) {
		if !readsIDs {
			limit, tooLarge = s.maxUpload(), errUploadTooLarge
		}
		readIdle(w) // limits.read_timeout bounds each wait for its next piece
	}
	if r.ContentLength > limit {
		s.metrics.request("too_large")
		tooLarge.write(w)
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(httpWriter(w), r.Body, limit)
	}
	if readsIDs {
		// The ids its JSON body names (a file given to a vector store, a
		// batch's input file, a fine-tuned model…) are checked before it
		// is sent (bodyids.go): the body is read first.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.refuseBody(w, err, tooLarge)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		if e := s.checkBodyIDs(r.Context(), k.team, body, true); e != nil {
			s.refuse(w, e)
			return
		}
		if responsesInput(r) {
			// Nor another team's response or conversation, which a count
			// of a call's input tokens or a compaction reads as a
			// Responses call does.
			if e := s.checkOwner(r.Context(), k.team, previousResponseID(nil, body)); e != nil {
				s.refuse(w, e)
				return
			}
			if id := conversationID(nil, body); id != "" {
				if e := s.checkObject(r.Context(), k.team, conversations, id); e != nil {
					s.refuse(w, e)
					return
				}
			}
		}
	}
	if !readsIDs && !isEmbeddings(r) && !isResponses(r) {
		// A multipart form, or a JSON body of an endpoint of no owned
		// family (a JSON image edit), is read for the ids it names as it
		// is streamed (bodyguard.go): up to limits.max_body before
		// anything is sent, the rest held back until checked.
		if g := s.guardBody(r.Context(), r, k.team); g != nil {
			r.Body = g
			defer g.Close()
			if err := g.prime(int(s.maxBody())); err != nil {
				if gr, ok := errors.AsType[*guardRefusal](err); ok {
					s.refuse(w, gr.e)
					return
				}
				s.refuseBody(w, err, tooLarge)
				return
			}
		}
	}
	if len(s.upstreams) > 1 && r.Method == http.MethodPost && !isEmbeddings(r) && !isResponses(r) {
		// A call of another endpoint (legacy completions, moderations,
		// images, audio) goes to the upstream of the model its body names
		// within its first limits.max_body bytes (passmodel.go).
		if m := peekModel(r, s.maxBody()); m != "" {
			up = s.pick(m)
		}
	}
	if isEmbeddings(r) && r.Body != nil {
		// The input is read first: its tokens are reserved in the team's
		// budget before the call.
		body, ok := s.readPassBody(w, r)
		if !ok {
			return
		}
		if e := checkMembers(body, embeddingsMembers); e != nil {
			s.refuse(w, e)
			return
		}
		// Read once (nil when it is not JSON); a call that names its
		// model goes to the upstream that serves it.
		req := new(embeddingsRequest)
		if json.Unmarshal(body, req) != nil {
			req = nil
		} else if req.Model != "" {
			up = s.pick(req.Model)
		}
		facts := middleware.CallFacts{Operation: "embeddings"}
		if req != nil {
			facts.RequestedModel, facts.Model = req.Model, req.Model
		}
		ctx, e := s.passContext(r, k.team, callID, false)
		if e != nil {
			if e != errInvalidRunID {
				s.reportRefused(k.team, s.namedRun(r, k.team), facts, start, e)
			}
			s.refuse(w, e)
			return
		}
		var named *middleware.Run // the run of X-Run-Id, whose record gets the call
		if r.Header.Get(RunIDHeader) != "" {
			named = middleware.RunFrom(ctx)
		}
		// The reservation and the admission wait for their stores no
		// longer than the call's timeouts.total (a store that does not
		// answer: a 503, in the call's time).
		rctx := ctx
		var model string
		if req != nil {
			model = req.Model
		}
		if total := s.pol.Policy(k.team).Timeouts.For(model).Total.Duration(); total > 0 {
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeoutCause(ctx, total, &middleware.DeadlineError{Cause: timeout.ErrTotal, Limit: total})
			defer cancel()
		}
		h, e := s.reserveEmbeddings(rctx, k.team, req)
		if e != nil {
			s.reportRefused(k.team, named, facts, start, e)
			s.refuse(w, e)
			return
		}
		policed = true
		h.named = named
		// Released if no answer settled it (an upstream error); charged
		// its input if it was sent and timed out or its client went away
		// before the answer (lost).
		defer func(ctx context.Context) { h.releaseEmbeddings(ctx, lost) }(r.Context())
		modify = h.chargeEmbeddings
		r, bound = s.boundPass(ctx, r, k.team, model, model, false, false)
	}
	if isResponses(r) && r.Body != nil {
		// The Responses API: the call's worst case is reserved in the
		// team's budget before it is sent (see responses.go).
		body, ok := s.readPassBody(w, r)
		if !ok {
			return
		}
		if e := checkMembers(body, responsesMembers); e != nil {
			s.refuse(w, e)
			return
		}
		// Read once (nil when it is not a JSON request with a model), then
		// routed by the team's rules (see responses_route.go): the budget,
		// the rate limits and the upstream are the routed model's.
		req := new(responsesRequest)
		var unread string // why req is nil, for a refusal to say
		if err := json.Unmarshal(body, req); err != nil {
			req, unread = nil, err.Error()
		} else if req.Model == "" {
			req, unread = nil, "it has no model"
		}
		// Nor is another team's conversation to continue.
		if e := s.checkOwner(r.Context(), k.team, previousResponseID(req, body)); e != nil {
			s.refuse(w, e)
			return
		}
		// Nor another team's conversation object (objects_owner.go).
		if id := conversationID(req, body); id != "" {
			if e := s.checkObject(r.Context(), k.team, conversations, id); e != nil {
				s.refuse(w, e)
				return
			}
		}
		// Nor another team's file, vector store, container or fine-tuned
		// model named in the body (bodyids.go).
		if e := s.checkBodyIDs(r.Context(), k.team, body, false); e != nil {
			s.refuse(w, e)
			return
		}
		ctx, e := s.passContext(r, k.team, callID, true)
		if e != nil {
			if e != errInvalidRunID {
				// A run's call limit or deadline, or its store: the named
				// run's record has the call, failed.
				s.recordRefused(k.team, s.namedRun(r, k.team), req, start, e)
			}
			s.refuse(w, e)
			return
		}
		policed = true
		sent := body
		if req != nil {
			if routed, ok := s.routeResponses(ctx, k.team, body, req); ok {
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(routed)), int64(len(routed))
				sent = routed
			}
			up = s.pick(req.Model)
		}
		var named *middleware.Run // the run of X-Run-Id, whose record gets the call
		if r.Header.Get(RunIDHeader) != "" {
			named = middleware.RunFrom(ctx)
		}
		// The team's cache (responses_cache.go): a hit is answered here,
		// holding nothing; a miss keeps its answer.
		var cc *cachedCall
		if req != nil {
			var hit *cachedAnswer
			if cc, hit, e = s.lookupResponses(ctx, r, k.team, up, sent, req); e != nil {
				s.recordRefused(k.team, named, req, start, e)
				s.refuse(w, e)
				return
			}
			if hit != nil {
				// The team is given the cached response: it may use it.
				for _, id := range answerResponseIDs(hit.body) {
					s.owners.record(ctx, s.logger, k.team, id)
				}
				serveCached(w, hit)
				s.recordHit(named, k.team, cmp.Or(req.asked, req.Model), req.Model, responsesTier(req.ServiceTier), hit.entry, start)
				s.metrics.request("ok")
				s.logger.Info("tokenwise/gateway: passed through", "team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
					"method", r.Method, "path", r.URL.Path, "cache", "hit", "ms", since(start))
				return
			}
		}
		if req != nil {
			// Sent through the team's fallback chain, which reserves each
			// model it tries (responses_fallback.go).
			call = s.newResponsesCall(s.passLimitsOf(k.team), k.team, req, sent, up, strings.TrimPrefix(r.URL.Path, "/v1"), named, req.streams())
		}
		if call != nil {
			// Released if no answer settled it; a stream settles when it
			// ends. The chain runs in the call's context (its team, its
			// run).
			defer call.release(r.Context())
			modify = call.charge
			r = r.WithContext(ctx)
		} else {
			h, e := s.reserveResponses(ctx, k.team, req, named)
			if e != nil && req == nil && unread != "" {
				e.Message += " (" + strings.TrimPrefix(unread, "json: ") + ")"
			}
			if e != nil {
				s.recordRefused(k.team, named, req, start, e)
				s.refuse(w, e)
				return
			}
			if h != nil {
				// Released if no answer settled it; charged its input if
				// it was sent and timed out or its client went away
				// before the answer (lost).
				defer func(ctx context.Context) { h.releaseLost(ctx, lost) }(r.Context())
				modify = h.charge
			} else {
				modify = s.reportCut
			}
		}
		if cc != nil {
			cc.call = call
			modify = cc.keep(modify)
		}
		var asked, model string
		if req != nil {
			asked, model = cmp.Or(req.asked, req.Model), req.Model
		}
		r, bound = s.boundPass(ctx, r, k.team, asked, model, req != nil && req.streams(), call != nil)
		if call != nil {
			call.bound = bound
		}
		if req != nil && req.streams() {
			// Each write of the stream waits for the client as long as
			// the team's policy lets it wait for the upstream (as a chat
			// stream's).
			setWriteTimeout(w, s.pol.Policy(k.team).Timeouts.Idle.Duration())
		}
	}
	defer bound.stop()
	if modify != nil && call == nil {
		// (The fallback chain's sender reads them itself.)
		modify = embeddedErrors(modify)
	}
	if modify != nil {
		modify = bound.watch(modify)
		if call == nil && isResponses(r) {
			// (First: every hook reads the answer as what it is. The
			// fallback chain's sender labels its answers itself.)
			modify = labelledStreams(modify)
		}
	} else if id, ok := backgroundPath(r); ok && (s.background.has(k.team, id) || s.background.done != nil) {
		// A background response of the team's, held until it is seen
		// done (here, or with Redis by another replica): its retrieval
		// or cancellation may show it done.
		modify = s.settleBackground(k.team, id)
	} else {
		modify = s.maskErrors // an endpoint the gateway does not police
	}
	if policed && isResponses(r) {
		// (Last: the ids of what the client reads are recorded as its
		// team's.)
		modify = s.recordOwner(k.team, modify)
	}
	if isOwned && !owned.list {
		modify = s.recordObjects(k.team, owned, modify)
	}
	if next := modify; next != nil {
		modify = func(resp *http.Response) error {
			dropCORS(resp.Header) // the gateway's file decides (cors.go)
			return next(resp)
		}
	}
	var idle *upstreamIdle
	if bound == nil && call == nil {
		// No team timeout bounds it: limits.upstream_idle does
		// (upstreamidle.go).
		r, idle = newUpstreamIdle(r, s.upstreamIdle())
		defer idle.stop()
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			if call == nil { // (the fallback chain's sender tracks its own attempts)
				pr.Out, sent = sendtrack.Track(s.pass, pr.Out)
			}
			pr.Out.URL = up.urlFor(pr.In.URL)
			pr.Out.URL.RawQuery = joinQuery(up.base.RawQuery, pr.In.URL.RawQuery)
			if call != nil {
				call.query = pr.In.URL.RawQuery // for an attempt on another upstream
			}
			pr.Out.Host = ""
			pr.Out.Header.Del(RunIDHeader)
			pr.Out.Header.Del("Expect") // (see isHop)
			// The encoding is the gateway's to ask for (net/http's
			// transport asks for gzip and decodes it): the answers it
			// charges are read here, and a client that accepts gzip
			// (Python's httpx asks on every request) would have them
			// compressed, unreadable, charged at their reservation.
			pr.Out.Header.Del("Accept-Encoding")
			pr.Out.Header.Del("Api-Key")
			pr.Out.Header.Del("X-Api-Key")
			pr.Out.Header.Del("Cookie") // the caller's cookies are for the gateway, as on a chat call (isHop)
			dropVirtualKey(pr.Out.Header, k.token)
			up.credentials(pr.Out.Header)
		},
		Transport:      idle.transport(s.pass),
		FlushInterval:  -1,
		ModifyResponse: modify,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if gr, ok := errors.AsType[*guardRefusal](err); ok {
				// A streamed body named another team's id, or could not
				// be read (bodyguard.go): cut before the upstream had it
				// whole.
				s.metrics.request(gr.e.Code)
				gr.e.write(w)
				return
			}
			if e := bodyError(err); e != errUnreadableBody {
				// The request's body was over the limit, or did not come
				// in time (a 408).
				if e == errTooLarge {
					e = tooLarge
					s.metrics.request("too_large")
				}
				e.write(w)
				return
			}
			if c := bound.cause(); c != nil {
				// A timeout of the team's or the run's ended the call
				// before its answer began.
				// Spent waiting for the budget's store, the error says so
				// (a 503, not the upstream's timeout).
				c = middleware.TimedOut(c, err)
				if sent.Sent() {
					lost = c
				}
				classify(c, s.secrets...).write(w)
				return
			}
			if c := idle.cause(); c != nil {
				// The upstream sent nothing for limits.upstream_idle.
				classify(c, s.secrets...).write(w)
				return
			}
			if middleware.UnansweredBilled(err) && sent.Sent() {
				lost = err // the client went away (the chain's own call charged its attempts)
			}
			if call != nil {
				// The chain ended without an answer to pass on: a refusal
				// (a budget, a rate limit, an open breaker), or the
				// network's failure.
				e := s.apiErrorOf(err)
				e.write(w)
				if e.Code != "upstream_error" {
					refused = e
				}
				return
			}
			if e, ok := errors.AsType[*apiError](err); ok {
				e.write(w) // the gateway's own answer (an owned list's list_timeout)
				return
			}
			e := &apiError{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_error", Message: "tokenwise/gateway: " + redact.Mask(err.Error(), s.secrets...)}
			e.write(w)
		},
	}
	if call != nil {
		p.Transport = call
	} else if isOwned && owned.list {
		p.Transport = &ownedList{next: p.Transport, owners: &s.objects, team: k.team, fam: owned.fam, logger: s.logger,
			within: s.pol.Policy(k.team).Timeouts.Total.Duration(), resume: &s.listResumes}
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v == http.ErrAbortHandler {
			// The proxy's copy of the answer failed midway (it aborts
			// the connection so): the client did not take it in (a
			// write timed out; net/http cancelled the call's context,
			// which ends the call and settles what it holds), or the
			// answer's read failed.
			outcome, why := "upstream_error", "the answer's read failed"
			if err := writeFailure(w); err != nil {
				outcome, why = "client_gone", (&writeError{err}).Error()
			} else if s.clientGone(client) {
				outcome, why = "client_gone", "the client went away"
			}
			s.metrics.request(outcome)
			s.logger.Warn("tokenwise/gateway: passed-through answer cut", "team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
				"method", r.Method, "path", r.URL.Path, "err", redact.Mask(why, s.secrets...), "ms", since(start))
			panic(v)
		} else if v != nil {
			panic(v)
		}
	}()
	p.ServeHTTP(sw, r)
	if refused != nil {
		s.metrics.request(refused.Code)
		return
	}
	where := []any{"upstream", up.Name}
	if model, tried := call.outcome(); tried > 0 {
		// The model that answered (or was tried last), its upstream, and
		// how many models the fallback chain tried.
		where = []any{"upstream", s.pick(model).Name, "model", model, "models_tried", tried}
	}
	if err := writeFailure(w); err != nil {
		// The client did not take the answer in (a write timed out) or
		// went away: net/http cancelled the call's context, which ended
		// it (a stream is settled as cut).
		s.metrics.request("client_gone")
		s.logger.Warn("tokenwise/gateway: passed-through answer cut: the client did not read it", append([]any{"team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
			"method", r.Method, "path", r.URL.Path, "err", redact.Mask((&writeError{err}).Error(), s.secrets...), "ms", since(start)}, where...)...)
		return
	}
	if s.clientGone(client) {
		// The client closed its connection (or, in process, its context
		// ended) before the answer's end: the call ended with it (a
		// stream is settled as cut, charged what it streamed), no
		// success and no failure of the upstream's.
		s.metrics.request("client_gone")
		s.logger.Warn("tokenwise/gateway: passed-through answer cut: the client went away", append([]any{"team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
			"method", r.Method, "path", r.URL.Path, "err", redact.Mask(context.Cause(client).Error(), s.secrets...), "ms", since(start)}, where...)...)
		return
	}
	if c := bound.cause(); c != nil {
		s.metrics.request("timeout")
		s.logger.Warn("tokenwise/gateway: passed-through call timed out", append([]any{"team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
			"method", r.Method, "path", r.URL.Path, "err", c.Error(), "ms", since(start)}, where...)...)
		return
	}
	s.metrics.request(passOutcome(policed, sw.status))
	s.logger.Info("tokenwise/gateway: passed through", append([]any{"team", k.team, "key", k.name, "run_id", runID, "call_id", callID,
		"method", r.Method, "path", r.URL.Path, "ms", since(start)}, where...)...)
}

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models lists the models the caller's policy uses (routing, fallback,
// downgrade, cascade) and those the upstreams declare, in OpenAI's shape,
// but another team's fine-tuned models.
func (s *Server) models(w http.ResponseWriter, r *http.Request, k keyEntry) {
	p := s.pol.Policy(k.team)
	seen := map[string]bool{}
	var out []modelObject
	add := func(m, owner string) {
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, modelObject{ID: m, Object: "model", OwnedBy: owner})
		}
	}
	for _, up := range s.upstreams {
		for _, m := range up.Models {
			add(m, up.Name)
		}
	}
	owner := s.upstreams[0].Name
	add(p.Routing.Default, owner)
	for _, r := range p.Routing.Rules {
		add(r.Model, owner)
	}
	for _, m := range p.Fallback.Models {
		add(m, owner)
	}
	add(p.Budget.DowngradeTo, owner)
	// Another team's fine-tuned model (bodyids.go) is not listed, as it
	// is not served: one whose owner cannot be read is left out.
	out = slices.DeleteFunc(out, func(m modelObject) bool {
		if !strings.HasPrefix(m.ID, "ft:") {
			return false
		}
		ok, err := s.objects.allowed(r.Context(), k.team, m.ID)
		if err != nil {
			s.logger.Warn("tokenwise/gateway: the team that made a fine-tuned model could not be read from Redis: not listed", "team", k.team, "model", m.ID, "error", err)
		}
		return !ok || err != nil
	})
	slices.SortFunc(out, func(a, b modelObject) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		(&apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// contentLength returns the Content-Length header value of resp's length
// (resp.ContentLength >= 0): its own header's when that says the same (the
// transport's answers do), else a new one.
func contentLength(resp *http.Response) []string {
	var num [20]byte
	n := strconv.AppendInt(num[:0], resp.ContentLength, 10)
	if v := resp.Header["Content-Length"]; len(v) == 1 && v[0] == string(n) {
		return v
	}
	return []string{string(n)}
}
