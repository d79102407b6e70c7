package openaitest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// memoryURL is the URL of a server that is not listening: only the in-memory
// transport reaches it.
const memoryURL = "http://openaitest.invalid/v1"

// Server is a scripted OpenAI-compatible Chat Completions server. It is an
// [http.Handler]; [Server.Start] puts it on a loopback listener and
// [Server.Transport] serves it in memory.
//
// Requests are answered by the first rule registered with [Server.On] that
// matches and still has a reply to give, else by the [Server.Default] reply,
// else by a 400 error naming the unmatched request, so that an incomplete
// script fails loudly.
//
// A Server is safe for concurrent use: rules may be added and recorded
// requests read while requests are being served.
type Server struct {
	// URL is the base URL to give clients, ending in "/v1" (the
	// chat completions endpoint is URL + "/chat/completions"). [New] sets it
	// to "http://openaitest.invalid/v1", which only [Server.Transport]
	// reaches; [Server.Start] replaces it with the listener's address.
	URL string

	mu      sync.Mutex
	rules   []*Rule
	def     *Reply
	reqs    []Recorded
	seq     int
	ts      *httptest.Server
	started bool
}

// New returns a server with no rules that is not listening; serve it with
// [Server.Start], [Server.Transport] or as an [http.Handler].
func New() *Server {
	return &Server{URL: memoryURL}
}

// NewServer returns a server listening on 127.0.0.1 that is closed by
// tb.Cleanup.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := New()
	s.Start()
	tb.Cleanup(s.Close)
	return s
}

// Start starts listening on a loopback port and sets URL to
// "http://127.0.0.1:<port>/v1". It panics if the server was already started.
// Stop it with [Server.Close].
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("tokenwise/openaitest: Server already started")
	}
	s.started = true
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL + "/v1"
}

// Close stops the listener started by Start, aborting the connections still
// open (stalled handlers are released), and waits for the handlers to
// return. It does nothing for a server that was not started, and may be
// called more than once. Requests served by Transport are not affected.
func (s *Server) Close() {
	s.mu.Lock()
	ts := s.ts
	s.ts = nil
	s.mu.Unlock()
	if ts != nil {
		ts.CloseClientConnections()
		ts.Close()
	}
}

// Transport returns an [http.RoundTripper] that serves requests in memory
// with this server, whatever their URL; see [NewTransport].
func (s *Server) Transport() http.RoundTripper {
	return NewTransport(s)
}

// On adds a rule answering the requests that match every one of the
// matchers (no matcher matches every request). Rules are tried in the order
// they were added. A rule without replies matches nothing.
func (s *Server) On(matchers ...Matcher) *Rule {
	r := &Rule{srv: s, matchers: slices.Clone(matchers), limit: -1}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.index = len(s.rules)
	s.rules = append(s.rules, r)
	return r
}

// Default sets the reply to requests no rule answers, replacing the
// default 400 error.
func (s *Server) Default(r Reply) {
	r = r.clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = &r
}

// Requests returns the requests received so far, in arrival order. The
// returned values are shared with the server and must not be modified.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Count returns the number of requests received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Reset forgets the recorded requests. Rules, their served counts and the
// sequence numbers used in ids are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// Rule answers the requests that match its matchers with its queue of
// replies: the n-th matching request gets the n-th reply, and once the queue
// is exhausted the last reply repeats, unless [Rule.Times] limits the rule.
// Its methods are safe for concurrent use.
type Rule struct {
	srv      *Server
	index    int
	matchers []Matcher // immutable after On
	replies  []Reply
	limit    int // -1: unlimited
	hits     int
}

// Reply appends replies to the rule's queue and returns the rule.
func (r *Rule) Reply(replies ...Reply) *Rule {
	cloned := make([]Reply, len(replies))
	for i, rep := range replies {
		cloned[i] = rep.clone()
	}
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.replies = append(r.replies, cloned...)
	return r
}

// Times limits the rule to n requests; after that it no longer matches and
// later rules (or the default) answer. It returns the rule.
func (r *Rule) Times(n int) *Rule {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.limit = max(n, 0)
	return r
}

// Hits returns the number of requests the rule has answered.
func (r *Rule) Hits() int {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	return r.hits
}

func (r *Rule) matches(req *ChatRequest) bool {
	for _, m := range r.matchers {
		if m != nil && !m(req) {
			return false
		}
	}
	return true
}

// Recorded is a request the server received.
type Recorded struct {
	// Seq is the 1-based arrival number of the request; it also appears in
	// the response id ("chatcmpl-openaitest-<Seq>").
	Seq    int
	Time   time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte
	// Chat is the decoded body; nil when the path is not a chat completions
	// endpoint or the body is not a JSON object.
	Chat *ChatRequest
	// Rule is the index (in On order) of the rule that answered, or -1 when
	// the default reply or an error answered.
	Rule int
}

// record appends rec, numbering it, and returns its sequence number.
func (s *Server) record(rec Recorded) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked(rec)
}

func (s *Server) recordLocked(rec Recorded) int {
	s.seq++
	rec.Seq = s.seq
	s.reqs = append(s.reqs, rec)
	return rec.Seq
}

// pick records rec and chooses its reply. Matchers run without the lock;
// the choice and the recording happen under it, so that Times limits hold
// under concurrency.
func (s *Server) pick(rec Recorded) (rep Reply, seq int, ok bool) {
	s.mu.Lock()
	rules := slices.Clone(s.rules)
	s.mu.Unlock()

	matched := make([]bool, len(rules))
	for i, r := range rules {
		matched[i] = r.matches(rec.Chat)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range rules {
		if !matched[i] || len(r.replies) == 0 || (r.limit >= 0 && r.hits >= r.limit) {
			continue
		}
		rep = r.replies[min(r.hits, len(r.replies)-1)]
		r.hits++
		rec.Rule = r.index
		return rep, s.recordLocked(rec), true
	}
	if s.def != nil {
		return *s.def, s.recordLocked(rec), true
	}
	return Reply{}, s.recordLocked(rec), false
}

// clone copies the reference fields of r, so that a scripted reply does not
// share memory with the caller.
func (r Reply) clone() Reply {
	r.ToolCalls = slices.Clone(r.ToolCalls)
	if r.Alternatives != nil {
		alts := make([]Reply, len(r.Alternatives))
		for i, a := range r.Alternatives {
			alts[i] = a.clone()
		}
		r.Alternatives = alts
	}
	if r.Shape != nil {
		sh := *r.Shape
		r.Shape = &sh
	}
	r.Raw = slices.Clone(r.Raw)
	r.Header = r.Header.Clone()
	if r.Usage != nil {
		u := *r.Usage
		r.Usage = &u
	}
	if r.Error != nil {
		e := *r.Error
		r.Error = &e
	}
	return r
}
