package gateway

import (
	"bytes"
	"io"
	"testing"
)

// FuzzResponsesStreamReadsInAnyPieces: whatever bytes a Responses stream
// carries and however the reads split them, the gateway passes them on
// unchanged and settles the call once — at the final event's usage, the
// same as when the stream is read whole, or as cut when it has none.
func FuzzResponsesStreamReadsInAnyPieces(f *testing.F) {
	f.Add([]byte("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n"+
		"event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"output_tokens\":5,\"total_tokens\":15}}}\r\n\r\n"), uint64(7))
	f.Add([]byte("data: {\"type\":\"response.incomplete\",\"response\":{\"usage\":{\"input_tokens\":3}}}\n"), uint64(1))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\ndata: {\"type\":\"response.failed\""), uint64(3))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		read := func(split func(int) int) (out []byte, finals []responseObject, cuts int) {
			r := &responsesStream{src: io.NopCloser(bytes.NewReader(stream)),
				final: func(o *responseObject) { finals = append(finals, *o) },
				cut:   func() { cuts++ }}
			for {
				p := make([]byte, split(len(out)))
				n, err := r.Read(p)
				out = append(out, p[:n]...)
				if err != nil {
					break
				}
			}
			_ = r.Close()
			return out, finals, cuts
		}
		whole, wantFinals, wantCuts := read(func(int) int { return len(stream) + 1 })
		x := seed | 1
		got, finals, cuts := read(func(int) int { // pieces of 1 to 64 bytes
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			return int(x%64) + 1
		})
		if !bytes.Equal(whole, stream) || !bytes.Equal(got, stream) {
			t.Fatalf("the stream was not passed on unchanged")
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
