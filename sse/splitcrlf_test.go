package sse_test

import (
	"strings"
	"testing"
)

// A "\r\n" split across two chunks (the model's stream cut between its CR
// and its LF) is one line break for the client, as it is in one chunk:
// chunks "a\r" and "\nb" reach an EventSource as "a\n" and "b" (before:
// "a\n" and "\nb", joined "a\n\nb", a blank line the text never had).
func TestCRLFSplitAcrossChunksIsOneLineBreak(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		chunks []string
		want   string // the events' data joined
	}{
		{[]string{"a\r", "\nb"}, "a\nb"},
		{[]string{"a\r", "\n", "b"}, "a\nb"},
		{[]string{"a\r", "\n", "\nb"}, "a\n\nb"},
		{[]string{"a\r", "\r\nb"}, "a\n\nb"},
		{[]string{"a\r", "b", "\nc"}, "a\nb\nc"},
		{[]string{"a\r\r", "\n\rb\r", "\n"}, "a\n\n\nb\n"},
	} {
		events := specEvents(sendOverHTTP(t, c.chunks))
		if len(events) == 0 || events[len(events)-1] != [2]string{"", "[DONE]"} {
			t.Fatalf("chunks %q: events %q", c.chunks, events)
		}
		var got strings.Builder
		for _, e := range events[:len(events)-1] {
			got.WriteString(e[1])
		}
		// The whole text, its line breaks read as the specification reads them.
		if whole := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(strings.Join(c.chunks, "")); whole != c.want {
			t.Fatalf("test case %q: want %q, the whole text reads %q", c.chunks, c.want, whole)
		}
		if got.String() != c.want {
			t.Errorf("chunks %q reached the client as %q (events %q), want %q", c.chunks, got.String(), events, c.want)
		}
	}
}
