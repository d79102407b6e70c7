package langchaingo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	twopenai "github.com/tokenwise/tokenwise/adapters/openai"
	"github.com/tokenwise/tokenwise/internal/redact"
	"github.com/tokenwise/tokenwise/middleware"
)

// maxErrorBody bounds how much of an error response NewTransport reads.
const maxErrorBody = 64 << 10

// NewTransport returns an [http.RoundTripper] for the HTTP client of an
// inner langchaingo model, e.g.
//
//	strong, _ := openai.New(openai.WithModel("gpt-4o"),
//		openai.WithHTTPClient(&http.Client{Transport: twlc.NewTransport(nil)}))
//
// langchaingo's backends turn a provider's HTTP error into text and drop
// its headers. With this transport installed, the adapter sees the status,
// the provider's error type and code, and the Retry-After headers of a
// failed call, so the error it returns is a [middleware.ProviderError]
// with RetryAfter set, classified without reading error text. It reads
// error responses (status 400 and above) of calls made through a [Model]
// and gives the client their body unchanged. base nil means the OpenAI
// adapter's default base transport (twopenai.DefaultBaseTransport: one
// clone of [http.DefaultTransport] per process with a 64 KiB write
// buffer, so that a request of tens of kilobytes goes out in one write
// with its headers). It is safe for concurrent use.
//
// It also checks the server-sent events of a streamed answer as the
// backend reads them, and puts them in the shape langchaingo's openai
// backend assembles correctly (see checkedStream): a data line that is not
// a valid chunk (which the backend would skip, returning a shortened
// answer as a success) fails the read with a [middleware.ErrMalformed]
// error, a stream that ends without "data: [DONE]" with a
// [middleware.ErrStreamCut] error, and tool-call fragments in any order
// are merged by index and delivered whole before the finish reason. Give
// it as the base of the other (twlc.NewTransport(twopenai.NewTransport(
// chain))) to use both.
func NewTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = twopenai.DefaultBaseTransport()
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	slot, _ := req.Context().Value(failureKey{}).(*httpFailure)
	if resp.StatusCode < 400 {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			resp.Body = &checkedStream{rc: resp.Body}
		}
		return resp, nil
	}
	if slot == nil {
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(body), resp.Body), c: resp.Body}
	if rerr != nil {
		body = nil
	}
	secrets := redact.Secrets(req.Header)
	for k, vs := range req.URL.Query() {
		if k := strings.ToLower(k); strings.Contains(k, "key") || strings.Contains(k, "token") {
			secrets = append(secrets, vs...)
		}
	}
	f := failure{status: resp.StatusCode, header: redact.Header(resp.Header, secrets...), secrets: secrets}
	f.typ, f.code, f.message = parseErrorBody(body)
	f.message = redact.Mask(f.message, secrets...)
	slot.set(f)
	return resp, nil
}

type replayBody struct {
	io.Reader
	c io.Closer
}

func (b *replayBody) Close() error { return b.c.Close() }

// parseErrorBody reads the error object of OpenAI-style bodies
// ({"error":{"message","type","code"}}), Anthropic's ({"type":"error",
// "error":{"type","message"}}) and Google's ({"error":{"code":429,
// "status":"RESOURCE_EXHAUSTED","message"}}).
func parseErrorBody(body []byte) (typ, code, message string) {
	var b struct {
		Error struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
			Status  string          `json:"status"`
		} `json:"error"`
	}
	if len(body) == 0 || json.Unmarshal(body, &b) != nil {
		return "", "", strings.TrimSpace(string(body))
	}
	typ = b.Error.Type
	if typ == "" {
		typ = b.Error.Status
	}
	var s string
	if json.Unmarshal(b.Error.Code, &s) == nil {
		code = s
	}
	return typ, code, b.Error.Message
}

type failureKey struct{}

// failure is what NewTransport saw of a failed HTTP call.
type failure struct {
	status  int
	header  http.Header
	typ     string
	code    string
	message string   // masked
	secrets []string // the request's credentials, for classify to mask
}

// httpFailure is the per-call slot NewTransport fills; the last failure of
// the call wins.
type httpFailure struct {
	mu sync.Mutex
	f  *failure
}

func (h *httpFailure) set(f failure) {
	h.mu.Lock()
	h.f = &f
	h.mu.Unlock()
}

func (h *httpFailure) get() (failure, bool) {
	if h == nil {
		return failure{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return failure{}, false
	}
	return *h.f, true
}

// failureContext is the context of an inner call: its parent plus the slot
// NewTransport fills, in one allocation.
type failureContext struct {
	context.Context
	slot httpFailure
}

func (c *failureContext) Value(key any) any {
	if key == (failureKey{}) {
		return &c.slot
	}
	return c.Context.Value(key)
}

// checkedStream checks an event stream as langchaingo's openai backend
// reads it, and puts it in the one shape that backend assembles correctly:
//
//   - a data line that is not JSON, or whose fields have the wrong type
//     (both of which the backend skips), fails the read with a
//     middleware.ErrMalformed error; a stream that ends without
//     "data: [DONE]" fails it with middleware.ErrStreamCut, unless it
//     was closed after choice 0's finish_reason (servers that never send
//     [DONE]): it then ends with a "data: [DONE]" of its own;
//   - tool-call fragments are held back and merged by index (as the
//     official SDKs do: any order, ids and names in any fragment, a new id at
//     a used index is a new call), and delivered as one complete delta per
//     call just before the finish_reason: the backend appends untyped
//     fragments to its last call, so it mis-assembles interleaved ones;
//   - choices other than index 0 are dropped (the backend reads
//     choices[0] of every chunk, whatever its index), and "reasoning" is
//     renamed "reasoning_content", the name the backend reads;
//   - a choice-0 entry after choice 0's finish_reason that has none
//     (Azure's asynchronous content filter annotation, a usage chunk with
//     an empty choice) gets the finish_reason read last: the backend
//     keeps the finish_reason of the last entry, null included, and the
//     adapter would take the complete answer for a cut one.
//
// Lines that need none of this pass unchanged.
type checkedStream struct {
	rc       io.ReadCloser
	br       *bufio.Reader
	out      []byte // transformed bytes not yet read
	line     []byte
	acc      middleware.Accumulator // the held-back tool calls
	held     bool                   // acc holds calls not yet delivered
	sent     bool                   // the calls were delivered
	done     bool                   // "data: [DONE]" was read
	finished bool                   // choice 0's finish_reason was read
	reason   string                 // choice 0's last finish_reason
	err      error
}

func (s *checkedStream) Read(p []byte) (int, error) {
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.rc, 16<<10)
	}
	for len(s.out) == 0 && s.err == nil {
		s.step()
	}
	if len(s.out) > 0 {
		n := copy(p, s.out)
		s.out = s.out[n:]
		return n, nil
	}
	return 0, s.err
}

// step reads one line and appends what it becomes to out, or sets err.
func (s *checkedStream) step() {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if len(line) > 0 {
		if ferr := s.transform(line); ferr != nil {
			s.out, s.err = nil, ferr
			return
		}
	}
	switch {
	case err == io.EOF && !s.done && s.finished:
		// Servers that never send [DONE] (some llama.cpp forks, older TGI
		// and text-generation-webui) end a finished stream by closing it:
		// closed after choice 0's finish_reason, it is complete, and ends
		// as the backend expects.
		s.done = true
		s.out = append(s.out, "data: [DONE]\n\n"...)
		s.err = io.EOF
	case err == io.EOF && !s.done:
		s.err = &streamFault{kind: middleware.ErrStreamCut, msg: "the stream ended without [DONE]", cause: io.ErrUnexpectedEOF}
	case err != nil:
		s.err = err
	}
}

// transform appends what one line (with its line ending) becomes to out.
func (s *checkedStream) transform(line []byte) error {
	text := bytes.TrimRight(line, "\r\n")
	payload, ok := bytes.CutPrefix(text, []byte("data:"))
	if !ok {
		s.out = append(s.out, line...)
		return nil
	}
	payload = bytes.TrimSpace(payload)
	switch {
	case len(payload) == 0:
		s.out = append(s.out, line...)
		return nil
	case string(payload) == "[DONE]":
		s.done = true
		s.flushCalls()
		s.out = append(s.out, line...)
		return nil
	}
	var c lcChunk
	if err := json.Unmarshal(payload, &c); err != nil {
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not a valid chunk", cause: err}
	}
	rewrite, finish, wasFinished := false, false, s.finished
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			rewrite = true
			continue
		}
		if wasFinished && (ch.FinishReason == nil || *ch.FinishReason == "") {
			// A choice-0 entry after the finish with no finish_reason
			// (Azure's asynchronous content filter annotation, a usage
			// chunk's empty choice): the backend copies every entry's
			// finish_reason, so it would forget the finish.
			rewrite = true
		}
		if ch.Delta.Reasoning != nil || len(ch.Delta.ToolCalls) > 0 {
			rewrite = true
		}
		for i, d := range ch.Delta.ToolCalls {
			if d == nil {
				return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed tool call is null"}
			}
			td := middleware.ToolCallDelta{Index: i}
			if d.Index != nil {
				td.Index = int(*d.Index)
			}
			if d.ID != nil {
				td.ID = *d.ID
			}
			if d.Function != nil {
				if d.Function.Name != nil {
					td.Name = *d.Function.Name
				}
				if d.Function.Arguments != nil {
					td.Arguments = *d.Function.Arguments
				}
			}
			s.acc.Add(middleware.Chunk{ToolCalls: []middleware.ToolCallDelta{td}})
			s.held = true
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			finish, s.finished, s.reason = true, true, *ch.FinishReason
		}
	}
	if finish {
		s.flushCalls()
	}
	if !rewrite {
		s.out = append(s.out, line...)
		return nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line is not a valid chunk", cause: err}
	}
	choices, _ := m["choices"].([]any)
	kept := choices[:0]
	for _, ch := range choices {
		cm, _ := ch.(map[string]any)
		if cm == nil || fmt.Sprint(cm["index"]) != "0" && cm["index"] != nil {
			continue
		}
		if r, _ := cm["finish_reason"].(string); wasFinished && r == "" {
			cm["finish_reason"] = s.reason
		}
		if delta, _ := cm["delta"].(map[string]any); delta != nil {
			delete(delta, "tool_calls")
			if r, ok := delta["reasoning"]; ok {
				delete(delta, "reasoning")
				if _, has := delta["reasoning_content"]; !has {
					delta["reasoning_content"] = r
				}
			}
		}
		kept = append(kept, cm)
	}
	m["choices"] = kept
	b, err := json.Marshal(m)
	if err != nil {
		return &streamFault{kind: middleware.ErrMalformed, msg: "a streamed data line cannot be re-encoded", cause: err}
	}
	s.out = append(s.out, "data: "...)
	s.out = append(s.out, b...)
	s.out = append(s.out, "\n\n"...)
	return nil
}

// flushCalls delivers the held tool calls, once, one after the other: a
// chunk with each call's id, type, name and first piece of arguments, then
// chunks with the rest of its arguments in pieces (langchaingo's backend
// reads lines of at most 64 KiB).
func (s *checkedStream) flushCalls() {
	if !s.held || s.sent {
		return
	}
	s.sent = true
	for i, c := range s.acc.Response().Message.ToolCalls {
		args := c.Arguments
		first := true
		for first || args != "" {
			n := min(len(args), maxArgsPiece)
			for n < len(args) && !utf8.RuneStart(args[n]) {
				n--
			}
			d := map[string]any{"index": i, "function": map[string]any{"arguments": args[:n]}}
			if first {
				d["id"], d["type"] = c.ID, "function"
				d["function"].(map[string]any)["name"] = c.Name
			}
			args, first = args[n:], false
			b, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"tool_calls": []any{d}}}}})
			s.out = append(s.out, "data: "...)
			s.out = append(s.out, b...)
			s.out = append(s.out, "\n\n"...)
		}
	}
}

// maxArgsPiece bounds the bytes of arguments per delivered chunk: escaped,
// a piece stays well within langchaingo's 64 KiB line limit.
const maxArgsPiece = 8 << 10

func (s *checkedStream) Close() error { return s.rc.Close() }

// lcChunk is the part of a chunk checkedStream reads, with the types
// langchaingo's openai backend decodes it with (a chunk that does not
// decode is one the backend would skip).
type lcChunk struct {
	ID      string  `json:"id"`
	Created float64 `json:"created"`
	Model   string  `json:"model"`
	Choices []struct {
		Index float64 `json:"index"`
		Delta struct {
			Role             string        `json:"role"`
			Content          string        `json:"content"`
			ReasoningContent string        `json:"reasoning_content"`
			Reasoning        *string       `json:"reasoning"`
			ToolCalls        []*lcToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type lcToolCall struct {
	Index    *float64 `json:"index"`
	ID       *string  `json:"id"`
	Type     *string  `json:"type"`
	Function *struct {
		Name      *string `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"function"`
}

// streamFault is what checkedStream fails a read with; classify makes it a
// ProviderError of its kind.
type streamFault struct {
	kind  error // middleware.ErrMalformed or middleware.ErrStreamCut
	msg   string
	cause error
}

func (e *streamFault) Error() string        { return e.kind.Error() + ": " + e.msg }
func (e *streamFault) Is(target error) bool { return target == e.kind }
func (e *streamFault) Unwrap() error        { return e.cause }
