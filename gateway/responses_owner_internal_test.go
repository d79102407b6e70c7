package gateway

import "testing"

// TestOwnerTapReadsLinesAsTheSSESpecEndsThem: the ids a Responses stream's
// events carry are read whatever ends its lines — an LF, a CRLF or a CR
// alone, as the SSE spec allows and responsesStream reads them — and in
// pieces of any size; with CRs alone the tap took the whole stream for one
// line and recorded no id, so the response was left to any team.
func TestOwnerTapReadsLinesAsTheSSESpecEndsThem(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		stream := "event: response.created" + eol + `data: {"type":"response.created","response":{"id":"resp_a","status":"in_progress"}}` + eol + eol +
			"event: response.completed" + eol + `data: {"type":"response.completed","response":{"id":"resp_a","status":"completed"}}` + eol + eol
		for _, size := range []int{1, 7, len(stream)} {
			var ids []string
			tap := &ownerTap{record: func(id string) { ids = append(ids, id) }}
			for b := []byte(stream); len(b) > 0; b = b[min(size, len(b)):] {
				tap.scan(b[:min(size, len(b))])
			}
			if len(ids) != 1 || ids[0] != "resp_a" {
				t.Errorf("lines ended by %q, read %d bytes at a time: ids %q, want [resp_a]", eol, size, ids)
			}
		}
	}
}
