package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// replaySeeds are kept answers: indented as OpenAI sends a JSON answer,
// compact as a stream's final event carries it, with a reasoning item, a
// function call, a custom tool call, a refusal, annotations and logprobs,
// and answers that are not response objects.
var replaySeeds = []string{
	`{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"The disks are fine.","annotations":[]}]}],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}`,
	"{\n  \"id\": \"resp_2\",\n  \"object\": \"response\",\n  \"status\": \"completed\",\n  \"output\": [\n    {\n      \"type\": \"reasoning\",\n      \"id\": \"rs_2\",\n      \"summary\": [{\"type\": \"summary_text\", \"text\": \"Look at\\nthe disks.\"}]\n    },\n    {\n      \"type\": \"function_call\",\n      \"id\": \"fc_2\",\n      \"call_id\": \"call_2\",\n      \"name\": \"check\",\n      \"arguments\": \"{\\\"host\\\": \\\"web-<2>\\\"}\",\n      \"status\": \"completed\"\n    }\n  ]\n}",
	`{"id":"resp_3","object":"response","status":"completed","output":[{"type":"message","id":"msg_3","role":"assistant","content":[{"type":"refusal","refusal":"I can't."},{"type":"output_text","text":"See [1] & <b>","annotations":[{"type":"url_citation","url":"https://a.example","start_index":4,"end_index":7}],"logprobs":[{"token":"See","logprob":-0.1,"bytes":[83,101,101],"top_logprobs":[]}]}]}]}`,
	`{"id":"resp_4","object":"response","status":"completed","output":[{"type":"custom_tool_call","call_id":"call_4","name":"patch","input":"*** Begin Patch\n*** End Patch"},{"type":"message","id":"msg_4","content":[{"type":"output_text","text":""}]}]}`,
	`{"id":"resp_5","object":"response","status":"completed","output":[]}`,
	`{"id":"resp_6","object":"response","status":"completed"}`,
	`{"id":"resp_7","object":"response","status":"completed","output":null}`,
	`{"id":"resp_8","object":"response","status":"completed","output":[{"type":"function_call","arguments":{"a":1}}]}`,
	`{"id":"resp_9","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":1}]}]}`,
	`{"output":[1]}`,
	`[]`,
	`null`,
	`"response"`,
	`{"id":"\u2028resp","output":[{"type":"message","id":"m\u0000","content":[{"type":"output_text","text":"a\u2029b\r\n\u007f"}]}]}`,
}

// FuzzReplayStreamRebuildsTheAnswer: a kept answer that replayStream
// replays (any answer it does not refuse) is replayed as a stream the
// SDKs read: events of one data line each, their type named twice and
// alike, sequence numbers from 0 without a gap; the output items begun
// in order, each with the type and id of the answer's item at its index
// and done with that item whole; a text, refusal, function arguments or
// custom tool input rebuilt from its deltas equal to the item's own; and
// response.completed last, with the answer.
func FuzzReplayStreamRebuildsTheAnswer(f *testing.F) {
	for _, s := range replaySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		events, ok := replayStream(answer)
		if !ok {
			return
		}
		// The output is the member named exactly so (as the SDKs read it).
		var members map[string]json.RawMessage
		var want struct{ Output []map[string]any }
		if err := json.Unmarshal(answer, &members); err != nil || members == nil {
			t.Fatalf("replayed an answer that is not a response object: %v", err)
		}
		if err := json.Unmarshal(cmpOr(members["output"], []byte("null")), &want.Output); err != nil {
			t.Fatalf("replayed an answer whose output is not a list of objects: %v", err)
		}
		text := bytes.Split(events, []byte("\n\n"))
		if len(text) < 4 || len(text[len(text)-1]) != 0 {
			t.Fatalf("events do not end with a blank line: %q", events)
		}
		type event struct {
			Type         string          `json:"type"`
			Seq          int             `json:"sequence_number"`
			OutputIndex  *int            `json:"output_index"`
			ContentIndex int             `json:"content_index"`
			SummaryIndex *int            `json:"summary_index"`
			ItemID       json.RawMessage `json:"item_id"`
			Item         map[string]any  `json:"item"`
			Delta        string          `json:"delta"`
			Text         *string         `json:"text"`
			Refusal      *string         `json:"refusal"`
			Arguments    *string         `json:"arguments"`
			Input        *string         `json:"input"`
			Response     json.RawMessage `json:"response"`
		}
		var evs []event
		for i, e := range text[:len(text)-1] {
			lines := strings.Split(string(e), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
				t.Fatalf("event %d is not an event line and one data line: %q", i, e)
			}
			var ev event
			data := strings.TrimPrefix(lines[1], "data: ")
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event %d: data is not JSON (%v): %q", i, err, data)
			}
			if ev.Type != strings.TrimPrefix(lines[0], "event: ") || ev.Seq != i {
				t.Fatalf("event %d: type %q under event %q, sequence number %d", i, ev.Type, lines[0], ev.Seq)
			}
			evs = append(evs, ev)
		}
		if evs[0].Type != "response.created" || evs[1].Type != "response.in_progress" || evs[len(evs)-1].Type != "response.completed" {
			t.Fatalf("events %s … %s", evs[0].Type, evs[len(evs)-1].Type)
		}
		if !jsonEqual(evs[len(evs)-1].Response, answer) {
			t.Fatalf("response.completed carries %s, want the answer %s", evs[len(evs)-1].Response, answer)
		}
		for _, ev := range evs[:2] {
			var r struct {
				Status string `json:"status"`
				Output []any  `json:"output"`
			}
			if json.Unmarshal(ev.Response, &r) != nil || r.Status != "in_progress" || r.Output == nil || len(r.Output) != 0 {
				t.Fatalf("%s: response %s, want in progress without output", ev.Type, ev.Response)
			}
		}
		begun, done := 0, 0
		acc := map[[2]int]string{}
		summaries := map[[2]int]string{}
		var args string
		for _, ev := range evs[2 : len(evs)-1] {
			if ev.OutputIndex == nil {
				t.Fatalf("%s without output_index", ev.Type)
			}
			i := *ev.OutputIndex
			if i >= len(want.Output) || i != begun-1 && ev.Type != "response.output_item.added" {
				t.Fatalf("%s for output %d (%d begun, %d in the answer)", ev.Type, i, begun, len(want.Output))
			}
			item := want.Output[i]
			switch ev.Type {
			case "response.output_item.added":
				if i != begun || done != begun {
					t.Fatalf("output %d begun after %d begun, %d done", i, begun, done)
				}
				begun++
				if !reflect.DeepEqual(ev.Item["type"], item["type"]) || !reflect.DeepEqual(ev.Item["id"], item["id"]) ||
					!reflect.DeepEqual(ev.Item["call_id"], item["call_id"]) {
					t.Fatalf("output %d begun as %v, the answer's item is %v", i, ev.Item, item)
				}
				args = ""
				if sm, _ := item["summary"].([]any); item["type"] == "reasoning" && len(sm) > 0 {
					if b, _ := ev.Item["summary"].([]any); len(b) != 0 {
						t.Fatalf("reasoning output %d begun with its summary %v: its parts follow", i, b)
					}
				}
			case "response.output_item.done":
				done++
				if !reflect.DeepEqual(ev.Item, item) {
					t.Fatalf("output %d done as %v, want %v", i, ev.Item, item)
				}
			case "response.output_text.delta", "response.refusal.delta":
				acc[[2]int{i, ev.ContentIndex}] += ev.Delta
			case "response.output_text.done", "response.refusal.done":
				got := ev.Text
				if got == nil {
					got = ev.Refusal
				}
				parts, _ := item["content"].([]any)
				part, _ := parts[ev.ContentIndex].(map[string]any)
				w, _ := part["text"].(string)
				if ev.Type == "response.refusal.done" {
					w, _ = part["refusal"].(string)
				}
				if got == nil || *got != w || acc[[2]int{i, ev.ContentIndex}] != w {
					t.Fatalf("%s of output %d part %d: deltas %q, done %v; the part's %q", ev.Type, i, ev.ContentIndex, acc[[2]int{i, ev.ContentIndex}], got, w)
				}
			case "response.reasoning_summary_text.delta":
				if ev.SummaryIndex == nil {
					t.Fatalf("%s without summary_index", ev.Type)
				}
				summaries[[2]int{i, *ev.SummaryIndex}] += ev.Delta
			case "response.reasoning_summary_text.done":
				parts, _ := item["summary"].([]any)
				part, _ := parts[*ev.SummaryIndex].(map[string]any)
				if ev.Text == nil || !reflect.DeepEqual(*ev.Text, part["text"]) || summaries[[2]int{i, *ev.SummaryIndex}] != part["text"] {
					t.Fatalf("%s of output %d summary %d: deltas %q, done %v; the part's %v", ev.Type, i, *ev.SummaryIndex,
						summaries[[2]int{i, *ev.SummaryIndex}], ev.Text, part["text"])
				}
			case "response.function_call_arguments.delta", "response.custom_tool_call_input.delta":
				args += ev.Delta
			case "response.function_call_arguments.done", "response.custom_tool_call_input.done":
				got, w := ev.Arguments, item["arguments"]
				if ev.Type == "response.custom_tool_call_input.done" {
					got, w = ev.Input, item["input"]
				}
				if got == nil || !reflect.DeepEqual(*got, w) || args != w {
					t.Fatalf("%s of output %d: deltas %q, done %v; the item's %v", ev.Type, i, args, got, w)
				}
			}
			if len(ev.ItemID) > 0 && !jsonEqual(ev.ItemID, mustJSON(item["id"])) {
				t.Fatalf("%s of output %d names item %s, the item is %v", ev.Type, i, ev.ItemID, item["id"])
			}
		}
		if begun != len(want.Output) || done != begun {
			t.Fatalf("%d outputs begun, %d done, %d in the answer", begun, done, len(want.Output))
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func cmpOr(a, b []byte) []byte {
	if len(a) > 0 {
		return a
	}
	return b
}
