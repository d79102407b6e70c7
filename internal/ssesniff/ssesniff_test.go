package ssesniff

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// TestSniff: a body is read as an event stream when its first bytes
// that are not white space nor a byte order mark are a comment or an SSE
// field's name and colon; sniffing reads nothing.
func TestSniff(t *testing.T) {
	for body, want := range map[string]bool{
		"data: {}": true, "data:[DONE]": true, ":\n\n": true, ": keep-alive\n": true, "event: message\n": true, "id: 1\n": true,
		"retry: 3000\n": true, "\n\r\n  \tdata: x": true, "\xef\xbb\xbfdata: x": true, "\n\xef\xbb\xbf\nid:": true,
		`{"id":"x","choices":[]}`: false, " \n{}": false, "": false, "  ": false, "dat": false, "date: x": false, "ids: 1": false,
		"\xef\xbb": false, "\xef\xbb\xbf{}": false, "[]": false, "null": false, "retry:": true,
	} {
		br := bufio.NewReaderSize(strings.NewReader(body), 16)
		if got := Sniff(br); got != want {
			t.Errorf("%q: %t, want %t", body, got, want)
		}
		if rest, _ := io.ReadAll(br); string(rest) != body {
			t.Errorf("%q: sniffing read %q away", body, body[:len(body)-len(rest)])
		}
	}
	// Blank bytes beyond the reader's buffer: not a stream, no error.
	if Sniff(bufio.NewReaderSize(strings.NewReader(strings.Repeat(" ", 64)+"data: x"), 16)) {
		t.Error("64 spaces then a data line, sniffed with a buffer of 16: taken for a stream")
	}
}
