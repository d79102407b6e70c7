package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tokenwise/tokenwise/middleware"
)

// TestSplicedBodyIsThePatchedRequest: for random request bodies and random
// changes a layer makes (the model, max_tokens, temperature, tools
// removed, streaming turned on or off), the body sent upstream — the
// original with the changed members spliced in — is valid JSON, decodes
// to the changed request, keeps every other member's bytes, and reads the
// same through Read in one-byte steps, through WriteTo, and again (as
// GetBody does for a retried request), whether it is sent joined (below
// joinBelow bytes) or in pieces.
func TestSplicedBodyIsThePatchedRequest(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 5))
	pieces := 0 // bodies sent in pieces
	defer func() {
		if pieces == 0 && !t.Failed() {
			t.Error("no body was sent in pieces")
		}
	}()
	for range 2000 {
		var msgs, tools []string
		for range 1 + rng.IntN(4) {
			msgs = append(msgs, randomMessageJSON(rng))
		}
		for range rng.IntN(3) {
			tools = append(tools, randomToolJSON(rng))
		}
		members := []string{`"model":"gpt-4o-mini"`, `"messages":[` + strings.Join(msgs, ",") + `]`}
		for _, m := range []string{`"temperature":0.2`, `"max_tokens":100`, `"max_completion_tokens":90`, `"stream":true`,
			`"stream_options":{"include_usage":false,"x":1}`, `"user":"u"`, `"x_vendor":{"a":[1,2]}`, `"parallel_tool_calls":true`, `"tool_choice":"auto"`} {
			if rng.IntN(3) == 0 {
				members = append(members, m)
			}
		}
		if len(tools) > 0 {
			members = append(members, `"tools":[`+strings.Join(tools, ",")+`]`)
		}
		if rng.IntN(2) == 0 { // a body around joinBelow and beyond
			members = append(members, `"x_pad":"`+strings.Repeat("p", rng.IntN(2*joinBelow))+`"`)
		}
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		body := []byte("{" + strings.Join(members, ", ") + "}")
		orig, err := decodeRequest(body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		r := orig.Clone()
		if rng.IntN(2) == 0 {
			r.Model = "gpt-4o"
		}
		if rng.IntN(2) == 0 {
			r.MaxTokens = 1 + rng.IntN(1000)
		}
		if rng.IntN(3) == 0 {
			temp := 0.7
			r.Temperature = &temp
		}
		if rng.IntN(4) == 0 {
			r.Tools = nil
		}
		if rng.IntN(3) == 0 {
			r.Stream = func(context.Context, middleware.Chunk) error { return nil }
		}
		wb := encodeRequestBody(r, encodeOptions{})
		joined := wb.bytes()
		if len(joined) != wb.n || !json.Valid(joined) {
			t.Fatalf("%s\nspliced to %d bytes (%d counted), valid %v:\n%s", body, len(joined), wb.n, json.Valid(joined), joined)
		}
		got, err := decodeRequest(joined)
		if err != nil {
			t.Fatalf("%s: %v", joined, err)
		}
		if got.Model != r.Model || got.MaxTokens != r.MaxTokens || !sameFloat(got.Temperature, r.Temperature) ||
			len(got.Tools) != len(r.Tools) || len(got.Messages) != len(r.Messages) || (r.Stream != nil) != got.Native.(*Wire).req.stream {
			t.Fatalf("%s\nspliced to\n%s\nwhich decodes to %+v", body, joined, got)
		}
		var want map[string]json.RawMessage
		var have map[string]json.RawMessage
		_ = json.Unmarshal(body, &want)
		_ = json.Unmarshal(joined, &have)
		for _, k := range []string{"messages", "user", "x_vendor"} {
			if w, ok := want[k]; ok && !bytes.Equal(w, have[k]) {
				t.Fatalf("member %s changed: %s -> %s", k, w, have[k])
			}
		}
		// A body in pieces is sent joined, known to net/http as in
		// memory, below joinBelow bytes; in pieces from there.
		switch rd := wb.reader(joinBelow); {
		case len(wb.parts) <= 1 || wb.n < joinBelow:
			if _, ok := rd.(*bytes.Reader); !ok {
				t.Fatalf("a body of %d bytes in %d pieces is read by a %T", wb.n, len(wb.parts), rd)
			}
		default:
			if _, ok := rd.(*piecesReader); !ok {
				t.Fatalf("a body of %d bytes in %d pieces is read by a %T", wb.n, len(wb.parts), rd)
			}
			pieces++
		}
		for range 2 {
			one, err := io.ReadAll(iotest.OneByteReader(wb.reader(joinBelow)))
			if err != nil || !bytes.Equal(one, joined) {
				t.Fatalf("one-byte reads give %q (%v), want %q", one, err, joined)
			}
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, wb.reader(joinBelow)); err != nil || !bytes.Equal(buf.Bytes(), joined) {
				t.Fatalf("WriteTo gives %q (%v), want %q", buf.Bytes(), err, joined)
			}
		}
	}
}

// TestResponseBodyIsReadWhateverItsLengthSays: whatever its length says: a body shorter than its
// Content-Length is an error, a longer one is read whole, an unknown
// length is read to the end.
func TestResponseBodyIsReadWhateverItsLengthSays(t *testing.T) {
	body := []byte(`{"id":"x","choices":[]}`)
	for _, c := range []struct {
		length int64
		want   []byte
		fails  bool
	}{
		{int64(len(body)), body, false},
		{-1, body, false},
		{int64(len(body)) - 5, body, false},
		{int64(len(body)) + 5, nil, true},
	} {
		for _, r := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body)), iotest.DataErrReader(bytes.NewReader(body))} {
			got, err := readResponseBody(&http.Response{ContentLength: c.length, Body: io.NopCloser(r)})
			if c.fails != (err != nil) || !c.fails && !bytes.Equal(got, c.want) {
				t.Errorf("length %d: %q, %v", c.length, got, err)
			}
		}
	}
}

// TestRequestBodyIsItsLength: a request body is read whole when it is as
// long as its Content-Length, an error when it is shorter or longer (as
// net/http's transport has it; a longer one was cut at its length before),
// and read to the end when its length is unknown — whether the body writes
// itself out (a bytes.Reader, through http.NewRequest's NopCloser, as
// go-openai sends it) or is only read, in pieces or not.
func TestRequestBodyIsItsLength(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	for _, c := range []struct {
		length int64
		fails  bool
	}{
		{int64(len(body)), false},
		{-1, false},
		{0, false}, // unknown too, for a client's request
		{int64(len(body)) - 5, true},
		{int64(len(body)) + 5, true},
	} {
		for name, r := range map[string]func() io.Reader{
			"writer":    func() io.Reader { return bytes.NewReader(body) },
			"reader":    func() io.Reader { return struct{ io.Reader }{bytes.NewReader(body)} },
			"one byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
			"data, err": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) },
		} {
			req, _ := http.NewRequest(http.MethodPost, "http://upstream.invalid/v1/chat/completions", r())
			req.ContentLength = c.length
			if _, ok := req.Body.(io.WriterTo); ok != (name == "writer") {
				t.Fatalf("%s: the body is a WriterTo: %v", name, ok)
			}
			got, err := readBody(req)
			if c.fails != (err != nil) || !c.fails && !bytes.Equal(got, body) {
				t.Errorf("%s, length %d: %q, %v", name, c.length, got, err)
			}
		}
	}
}
