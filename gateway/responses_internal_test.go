package gateway

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/policies"
	"github.com/tokenwise/tokenwise/tokens"
)

// cutEnd is what the gateway adds to a stream cut before its final
// event (lines end at a CRLF, an LF or a CR; a blank line ends an event):
// a line left open is ended, an event left open too, then the cut event
// follows; after a final CR, an LF first, which makes it a CRLF (one
// line end for every reader). seq is the cut event's sequence number.
func cutEnd(stream []byte, seq int64) []byte {
	norm := strings.ReplaceAll(strings.ReplaceAll(string(stream), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(norm, "\n")
	last := lines[len(lines)-1] // "" when the stream ends with a line end
	var b []byte
	if bytes.HasSuffix(stream, []byte("\r")) {
		b = append(b, '\n')
	}
	if last != "" {
		b = append(b, '\n')
	}
	open := last != ""
	if !open && len(lines) >= 2 {
		open = lines[len(lines)-2] != ""
	}
	if open {
		b = append(b, '\n')
	}
	return appendErrorEvent(b, seq, "stream_cut", cutMessage)
}

// FuzzResponsesStreamReadsInAnyPieces: whatever bytes a Responses stream
// carries and however the reads split them, the gateway passes them on
// unchanged and settles the call once — at the final event's usage, the
// same as when the stream is read whole, or as cut when it has none, and
// then ends it with the cut event, which every SSE reader reads as a
// whole event of its own.
func FuzzResponsesStreamReadsInAnyPieces(f *testing.F) {
	f.Add([]byte("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n"+
		"event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"total_tokens\":15}}}\r\n\r\n"), uint64(7))
	f.Add([]byte("data: {\"type\":\"response.incomplete\",\"response\":{\"usage\":{\"input_tokens\":3}}}\n"), uint64(1))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\ndata: {\"type\":\"response.failed\""), uint64(3))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n"), uint64(5))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\r\n\r\n"), uint64(2))
	f.Add([]byte(""), uint64(1))
	// Lines ended by a CR alone (the SSE spec's third line end).
	f.Add([]byte("event: response.completed\rdata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}\r\r"), uint64(9))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\r"), uint64(4))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\r\r\n\r"), uint64(6))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		read := func(split func(int) int) (out []byte, finals []responseObject, cuts int, seq int64) {
			r := &responsesStream{src: io.NopCloser(bytes.NewReader(stream)),
				final: func(o *responseObject) { finals = append(finals, *o) },
				cut:   func(error) { cuts++ }}
			for {
				p := make([]byte, split(len(out)))
				n, err := r.Read(p)
				out = append(out, p[:n]...)
				if err != nil {
					break
				}
			}
			_ = r.Close()
			return out, finals, cuts, r.seq
		}
		whole, wantFinals, wantCuts, seq := read(func(int) int { return len(stream) + 1 })
		x := seed | 1
		got, finals, cuts, _ := read(func(int) int { // pieces of 1 to 64 bytes
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			return int(x%64) + 1
		})
		// Passed on unchanged; a stream without its final event ends with
		// the cut event, after what ends a line and an event left open
		// (its sequence number the one read whole gives it: read in
		// pieces, the stream must end the same).
		want := stream
		if len(wantFinals) == 0 {
			want = append(slices.Clip(stream), cutEnd(stream, seq)...)
		}
		if !bytes.Equal(whole, want) || !bytes.Equal(got, want) {
			t.Fatalf("read whole %q, in pieces %q; want %q", whole, got, want)
		}
		if len(wantFinals)+wantCuts != 1 || len(finals)+cuts != 1 {
			t.Fatalf("settled %d+%d times whole, %d+%d in pieces; want once", len(wantFinals), wantCuts, len(finals), cuts)
		}
		if len(finals) != len(wantFinals) || len(finals) == 1 && (finals[0].Model != wantFinals[0].Model ||
			(finals[0].Usage == nil) != (wantFinals[0].Usage == nil) || finals[0].Usage != nil && *finals[0].Usage != *wantFinals[0].Usage) {
			t.Fatalf("in pieces %+v, whole %+v", finals, wantFinals)
		}
	})
}

// TestResponsesInputReadsToolTypesExactly: a hosted tool hidden behind a
// "Type" member in another case is still a hosted tool (its input is not
// countable here), as the provider, which reads "type", sees it.
func TestResponsesInputReadsToolTypesExactly(t *testing.T) {
	s := &Server{est: tokens.New()}
	for tools, countable := range map[string]bool{
		`[{"type":"function","name":"f","parameters":{}}]`:              true,
		`[{"type":"web_search"}]`:                                       false,
		`[{"type":"web_search","Type":"function"}]`:                     false,
		`[{"Type":"function","type":"file_search","name":"f"}]`:         false,
		`[{"type":"custom","name":"c"},{"TYPE":"function","name":"g"}]`: false,
	} {
		req := &responsesRequest{Model: "gpt-4o", Input: []byte(`"hi"`), Tools: []byte(tools)}
		if _, ok := s.responsesInput("gpt-4o", policies.ModelSpec{}, req); ok != countable {
			t.Errorf("tools %s: countable %v, want %v", tools, ok, countable)
		}
	}
}

// TestResponsesStreamReadsEveryLineEnd: a stream whose lines end with an
// LF, a CRLF or a CR alone (all three SSE line ends) is settled at its
// final event's usage, whatever the reads' sizes; none is taken for cut.
func TestResponsesStreamReadsEveryLineEnd(t *testing.T) {
	events := []string{
		"event: response.created", `data: {"type":"response.created","response":{"usage":null}}`, "",
		"event: response.output_text.delta", `data: {"type":"response.output_text.delta","delta":"hi"}`, "",
		"event: response.completed", `data: {"type":"response.completed","response":{"model":"m","usage":{"input_tokens":4,"output_tokens":2,"total_tokens":6}}}`, "",
	}
	for _, end := range []string{"\n", "\r\n", "\r"} {
		stream := []byte(strings.Join(events, end) + end)
		for _, size := range []int{1, 2, 3, 7, len(stream)} {
			var finals []responseObject
			cuts := 0
			r := &responsesStream{src: io.NopCloser(bytes.NewReader(stream)),
				final: func(o *responseObject) { finals = append(finals, *o) },
				cut:   func(error) { cuts++ }}
			var out []byte
			for {
				p := make([]byte, size)
				n, err := r.Read(p)
				out = append(out, p[:n]...)
				if err != nil {
					break
				}
			}
			_ = r.Close()
			if cuts != 0 || len(finals) != 1 || finals[0].Usage == nil || finals[0].Usage.InputTokens != 4 || !bytes.Equal(out, stream) {
				t.Errorf("line end %q, reads of %d: %d cut, finals %+v, passed on %q", end, size, cuts, finals, out)
			}
		}
	}
}

// TestResponsesCutEventIsNumberedAfterTheStream: the error event that
// ends a cut stream has the sequence number that follows the last event's
// (the Vercel AI SDK takes an error event without one for a malformed
// event), 0 after a stream whose events have none.
func TestResponsesCutEventIsNumberedAfterTheStream(t *testing.T) {
	for stream, want := range map[string]string{
		"data: {\"type\":\"response.created\",\"sequence_number\":0}\n\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":7,\"delta\":\"hi\"}\n\n": `"sequence_number":8,"code":"stream_cut"`,
		"data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n":                                                                                      `"sequence_number":0,"code":"stream_cut"`,
		"data: {\"type\":\"response.created\",\"sequence_number\":3}\n\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":-9}\n\n":                       `"sequence_number":4,"code":"stream_cut"`,
	} {
		r := &responsesStream{src: io.NopCloser(strings.NewReader(stream)), final: func(*responseObject) {}, cut: func(error) {}}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if tail := strings.TrimPrefix(string(out), stream); !strings.HasPrefix(tail, "event: error\ndata: {\"type\":\"error\","+want) {
			t.Errorf("after %q the stream ended with %q, want its error event with %s", stream, tail, want)
		}
	}
}
