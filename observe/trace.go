package observe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// TraceVersion is the version of the trace format this package writes.
const TraceVersion = 1

// Record is one line of a trace: one LLM call. See the package
// documentation for the format.
type Record struct {
	V         int            `json:"v"`
	Run       string         `json:"run,omitempty"`
	Seq       int            `json:"seq,omitempty"`
	Team      string         `json:"team,omitempty"`
	Stage     string         `json:"stage,omitempty"`
	Time      time.Time      `json:"time"`
	Request   TraceRequest   `json:"request"`
	Response  *TraceResponse `json:"response,omitempty"`
	Model     string         `json:"model,omitempty"`
	Rule      string         `json:"rule,omitempty"`
	Cache     string         `json:"cache,omitempty"`
	CostPico  int64          `json:"cost_usd_pico"`            // exact, 10^-12 dollars
	SavedPico int64          `json:"saved_usd_pico,omitempty"` // exact, 10^-12 dollars
	// CostMicros and SavedMicros are read from traces written before costs
	// were exact (rounded up per component); a reader converts them.
	CostMicros  int64   `json:"cost_usd_micros,omitempty"`
	SavedMicros int64   `json:"saved_usd_micros,omitempty"`
	LatencyMs   float64 `json:"latency_ms"`
	Error       string  `json:"error,omitempty"`
}

// TraceRequest is a middleware.Request in the trace.
type TraceRequest struct {
	Model          string          `json:"model"`
	Messages       []TraceMessage  `json:"messages"`
	Tools          []TraceTool     `json:"tools,omitempty"`
	ToolChoice     string          `json:"tool_choice,omitempty"`
	Temperature    *float64        `json:"temperature,omitempty"`
	TopP           *float64        `json:"top_p,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
	Stop           []string        `json:"stop,omitempty"`
	MaxTokens      int             `json:"max_tokens,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	N              int             `json:"n,omitempty"`
	Extra          json.RawMessage `json:"extra,omitempty"`
	Stream         bool            `json:"stream,omitempty"`
}

// TraceMessage is a middleware.Message in the trace (text parts only).
type TraceMessage struct {
	Role       string          `json:"role"`
	Content    string          `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []TraceToolCall `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Reasoning  string          `json:"reasoning,omitempty"`
}

// TraceToolCall is a middleware.ToolCall in the trace.
type TraceToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// TraceTool is a middleware.Tool in the trace.
type TraceTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

// TraceResponse is a middleware.Response in the trace.
type TraceResponse struct {
	Model        string          `json:"model,omitempty"`
	Content      string          `json:"content,omitempty"`
	Reasoning    string          `json:"reasoning,omitempty"`
	ToolCalls    []TraceToolCall `json:"tool_calls,omitempty"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Usage        TraceUsage      `json:"usage"`
	FromCache    bool            `json:"from_cache,omitempty"`
}

// TraceUsage is a middleware.Usage in the trace.
type TraceUsage struct {
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	CachedInputTokens int64 `json:"cached_input_tokens"`
	CacheWriteTokens  int64 `json:"cache_write_tokens"`
	ReasoningTokens   int64 `json:"reasoning_tokens"`
	AudioInputTokens  int64 `json:"audio_input_tokens,omitempty"`
	AudioOutputTokens int64 `json:"audio_output_tokens,omitempty"`
}

func traceUsage(u middleware.Usage) TraceUsage {
	return TraceUsage{u.InputTokens, u.OutputTokens, u.CachedInputTokens, u.CacheWriteTokens, u.ReasoningTokens,
		u.AudioInputTokens, u.AudioOutputTokens}
}

// Usage returns the core usage.
func (u TraceUsage) Usage() middleware.Usage {
	return middleware.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedInputTokens: u.CachedInputTokens,
		CacheWriteTokens: u.CacheWriteTokens, ReasoningTokens: u.ReasoningTokens, AudioInputTokens: u.AudioInputTokens,
		AudioOutputTokens: u.AudioOutputTokens}
}

func traceCalls(tcs []middleware.ToolCall) []TraceToolCall {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]TraceToolCall, len(tcs))
	for i, tc := range tcs {
		out[i] = TraceToolCall{tc.ID, tc.Name, tc.Arguments}
	}
	return out
}

func coreCalls(tcs []TraceToolCall) []middleware.ToolCall {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]middleware.ToolCall, len(tcs))
	for i, tc := range tcs {
		out[i] = middleware.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
	}
	return out
}

func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return json.RawMessage(append([]byte(nil), b...))
}

// NewTraceRequest converts a core request.
func NewTraceRequest(r *middleware.Request) TraceRequest {
	tr := TraceRequest{Model: r.Model, ToolChoice: r.ToolChoice, Temperature: r.Temperature, TopP: r.TopP, Seed: r.Seed,
		Stop: r.Stop, MaxTokens: r.MaxTokens, ResponseFormat: rawJSON(r.ResponseFormat), N: r.N, Extra: rawJSON(r.Extra),
		Stream: r.Stream != nil, Messages: make([]TraceMessage, len(r.Messages))}
	for i := range r.Messages {
		m := &r.Messages[i]
		tr.Messages[i] = TraceMessage{Role: string(m.Role), Content: m.Text(), Name: m.Name, ToolCalls: traceCalls(m.ToolCalls),
			ToolCallID: m.ToolCallID, Reasoning: m.Reasoning}
	}
	for _, t := range r.Tools {
		tr.Tools = append(tr.Tools, TraceTool{Name: t.Name, Description: t.Description, Parameters: rawJSON(t.Parameters), Strict: t.Strict})
	}
	return tr
}

// Request converts the trace request back to a core request (without a
// stream function).
func (tr TraceRequest) Request() *middleware.Request {
	r := &middleware.Request{Model: tr.Model, ToolChoice: tr.ToolChoice, Temperature: tr.Temperature, TopP: tr.TopP, Seed: tr.Seed,
		Stop: tr.Stop, MaxTokens: tr.MaxTokens, N: tr.N, Messages: make([]middleware.Message, len(tr.Messages))}
	if len(tr.ResponseFormat) > 0 {
		r.ResponseFormat = []byte(tr.ResponseFormat)
	}
	if len(tr.Extra) > 0 {
		r.Extra = []byte(tr.Extra)
	}
	for i, m := range tr.Messages {
		r.Messages[i] = middleware.Message{Role: middleware.Role(m.Role), Content: m.Content, Name: m.Name,
			ToolCalls: coreCalls(m.ToolCalls), ToolCallID: m.ToolCallID, Reasoning: m.Reasoning}
	}
	for _, t := range tr.Tools {
		mt := middleware.Tool{Name: t.Name, Description: t.Description, Strict: t.Strict}
		if len(t.Parameters) > 0 {
			mt.Parameters = []byte(t.Parameters)
		}
		r.Tools = append(r.Tools, mt)
	}
	return r
}

// NewTraceResponse converts a core response.
func NewTraceResponse(r *middleware.Response) *TraceResponse {
	return &TraceResponse{Model: r.Model, Content: r.Message.Content, Reasoning: r.Message.Reasoning,
		ToolCalls: traceCalls(r.Message.ToolCalls), FinishReason: r.FinishReason, Usage: traceUsage(r.Usage), FromCache: r.FromCache}
}

// Response converts the trace response back to a core response.
func (tr *TraceResponse) Response() *middleware.Response {
	return &middleware.Response{Model: tr.Model, FinishReason: tr.FinishReason, Usage: tr.Usage.Usage(), FromCache: tr.FromCache,
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: tr.Content, Reasoning: tr.Reasoning, ToolCalls: coreCalls(tr.ToolCalls)}}
}

// Recorder writes every call that passes through its middleware as a line
// of a JSONL trace. Place it outside the tokenwise chain
// (middleware.Chain(rec.Middleware(), chain)) so that it records the
// request as the caller sent it and the facts the chain learnt (model,
// rule, cache status, cost). It is safe for concurrent use; lines are
// written whole, in the order calls finish.
type Recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

// NewRecorder returns a recorder writing to w. Call Flush before closing w.
func NewRecorder(w io.Writer) *Recorder { return &Recorder{w: bufio.NewWriter(w)} }

// Flush writes buffered lines to the underlying writer and returns the
// first write error met so far.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// finishedCapture keeps the CallFinished event of one call.
type finishedCapture struct {
	mu sync.Mutex
	ev *middleware.CallFinished
}

func (c *finishedCapture) Observe(_ context.Context, e middleware.Event) {
	if f, ok := e.(middleware.CallFinished); ok {
		c.mu.Lock()
		if c.ev == nil {
			c.ev = &f
		}
		c.mu.Unlock()
	}
}

// Middleware returns the recording middleware.
func (r *Recorder) Middleware() middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			capt := &finishedCapture{}
			rec := Record{V: TraceVersion, Time: time.Now().UTC(), Request: NewTraceRequest(req), Team: middleware.TeamFrom(ctx)}
			start := time.Now()
			resp, err := next.Handle(middleware.WithObserver(ctx, capt), req)
			rec.LatencyMs = float64(time.Since(start)) / float64(time.Millisecond)
			if resp != nil {
				rec.Response = NewTraceResponse(resp)
				rec.Model = resp.Model
			}
			if err != nil {
				rec.Error = err.Error()
			}
			capt.mu.Lock()
			if ev := capt.ev; ev != nil {
				f := ev.Facts
				rec.Run, rec.Seq, rec.Team, rec.Stage = f.Run, f.Seq, f.Team, string(f.Stage)
				rec.Model, rec.Rule, rec.Cache = f.Model, f.Rule, string(f.Cache)
				rec.CostPico, rec.SavedPico = f.CostPico, f.SavedPico
				rec.LatencyMs = float64(ev.Latency) / float64(time.Millisecond)
			} else if run := middleware.RunFrom(ctx); run != nil {
				rec.Run = run.ID()
			}
			capt.mu.Unlock()
			r.write(&rec)
			return resp, err
		})
	}
}

func (r *Recorder) write(rec *Record) {
	b, err := json.Marshal(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return
	}
	b = append(b, '\n')
	if _, err := r.w.Write(b); err != nil && r.err == nil {
		r.err = err
	}
}

// ReadTrace reads a JSONL trace. Blank lines are skipped; a line that is
// not a record of a known version is an error naming the line.
func ReadTrace(rd io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var out []Record
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("tokenwise/observe: trace line %d: %w", line, err)
		}
		if rec.V != TraceVersion {
			return nil, fmt.Errorf("tokenwise/observe: trace line %d: unsupported trace version %d (want %d)", line, rec.V, TraceVersion)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenwise/observe: trace line %d: %w", line+1, err)
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
