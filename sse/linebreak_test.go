package sse_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/sse"
)

// sendOverHTTP serves texts as one stream (each sent by Stream.Send)
// through sse.Handler over HTTP, and returns the body a client read.
func sendOverHTTP(t *testing.T, texts []string) string {
	t.Helper()
	srv := httptest.NewServer(sse.Handler(func(_ context.Context, _ *http.Request, s *sse.Stream) error {
		for _, text := range texts {
			if err := s.Send(text); err != nil {
				return err
			}
		}
		return nil
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// specEvents parses an SSE body as the WHATWG HTML specification's event
// stream interpretation does (what a browser's EventSource does): a line
// ends at CRLF, at LF or at a lone CR; a "data" field's value (one leading
// space removed) is appended to the data buffer with an LF; a blank line
// dispatches the event (when it has data), its data without the last LF;
// an "event" field names it.
func specEvents(body string) (out [][2]string) {
	var name, data string
	hasData := false
	for {
		i := strings.IndexAny(body, "\r\n")
		if i < 0 {
			return out // an unterminated last line dispatches nothing
		}
		line := body[:i]
		if strings.HasPrefix(body[i:], "\r\n") {
			body = body[i+2:]
		} else {
			body = body[i+1:]
		}
		if line == "" {
			if hasData {
				out = append(out, [2]string{name, strings.TrimSuffix(data, "\n")})
			}
			name, data, hasData = "", "", false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data, hasData = data+value+"\n", true
		case "event":
			name = value
		}
	}
}

// TestEveryTextReachesAnEventSourceWithItsLineBreaks: whatever text a run
// sends (any mix of LF, CRLF and lone CR line breaks, empty lines,
// "data:"-like text), a client reading the stream as the SSE specification
// says gets each text back as one event, with every line break, CRLF and
// lone CR alike, as an LF (the one line break SSE data can carry): no
// text is merged with the next line, no event is lost or added, and the
// events joined are the whole text read so (a "\r\n" split across two
// texts is one line break, sent with the first).
func TestEveryTextReachesAnEventSourceWithItsLineBreaks(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "bc", " ", "\n", "\r", "\r\n", "\n\r", "data: x", ":", "é", "日本", "\r\r", "\n\n"}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 17))
		texts := make([]string, 1+rng.IntN(4))
		for i := range texts {
			var b strings.Builder
			for range 1 + rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			texts[i] = b.String()
		}
		got := specEvents(sendOverHTTP(t, texts))
		// Each text is one event, but for the "\n" of a "\r\n" split
		// across two texts: one line break, sent with the first (a text
		// of that "\n" alone sends nothing).
		var sent []string
		cr := false
		for _, text := range texts {
			if cr && strings.HasPrefix(text, "\n") {
				text = text[1:]
			}
			cr = strings.HasSuffix(text, "\r")
			if text != "" {
				sent = append(sent, text)
			}
		}
		if len(got) != len(sent)+1 || got[len(got)-1] != [2]string{"", "[DONE]"} {
			t.Fatalf("seed %d: texts %q: events %q", seed, texts, got)
		}
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n")
		var joined strings.Builder
		for i, text := range sent {
			want := norm.Replace(text)
			if got[i] != [2]string{"", want} {
				t.Fatalf("seed %d: text %q reached the client as %q, want %q", seed, text, got[i][1], want)
			}
			joined.WriteString(got[i][1])
		}
		// The client's whole text is the run's, its line breaks read as
		// the specification reads them.
		if want := norm.Replace(strings.Join(texts, "")); joined.String() != want {
			t.Fatalf("seed %d: texts %q reached the client as %q, want %q", seed, texts, joined.String(), want)
		}
	}
}
