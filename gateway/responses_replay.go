package gateway

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
)

// A cached Responses answer is replayed to a streaming request as the
// stream the Responses API sends for it: response.created and
// response.in_progress (the response in progress, no output yet), then
// for each output item its output_item.added (the item begun: a message
// without content, a call without arguments), its content as one delta
// each (output_text and refusal parts, a function call's arguments, a
// custom tool call's input, a reasoning item's summary texts) with their
// done events, its output_item.done (the item whole), and response.completed with the
// answer as kept. Sequence numbers count from 0. The official SDKs'
// stream readers rebuild the answer from these events; their final
// response is the kept answer.

// replayStream returns the events of a stream that answers with answer
// (a response object's JSON); false when answer cannot be read as one.
func replayStream(answer []byte) ([]byte, bool) {
	var compact bytes.Buffer
	if json.Compact(&compact, answer) != nil {
		return nil, false
	}
	whole := compact.Bytes()
	var resp map[string]json.RawMessage
	if json.Unmarshal(whole, &resp) != nil || resp == nil {
		return nil, false
	}
	var items []json.RawMessage
	if out, ok := resp["output"]; ok && present(out) && json.Unmarshal(out, &items) != nil {
		return nil, false
	}
	begun := maps.Clone(resp)
	begun["status"] = json.RawMessage(`"in_progress"`)
	begun["output"] = json.RawMessage(`[]`)
	begun["usage"] = json.RawMessage(`null`)
	begunJSON, err := marshalJSON(begun)
	if err != nil {
		return nil, false
	}
	w := &eventWriter{}
	w.event("response.created", "response", begunJSON)
	w.event("response.in_progress", "response", begunJSON)
	for i, raw := range items {
		if !w.item(i, raw) {
			return nil, false
		}
	}
	w.event("response.completed", "response", whole)
	return w.b, true
}

// eventWriter writes the events of a replayed stream.
type eventWriter struct {
	b   []byte
	seq int
}

// event writes an event of type typ with the members given as pairs of
// a name and a JSON value.
func (w *eventWriter) event(typ string, members ...any) {
	w.b = append(w.b, "event: "...)
	w.b = append(w.b, typ...)
	w.b = append(w.b, "\ndata: {\"type\":"...)
	w.b = strconv.AppendQuote(w.b, typ)
	w.b = append(w.b, `,"sequence_number":`...)
	w.b = strconv.AppendInt(w.b, int64(w.seq), 10)
	for i := 0; i+1 < len(members); i += 2 {
		w.b = append(w.b, ',')
		w.b = strconv.AppendQuote(w.b, members[i].(string))
		w.b = append(w.b, ':')
		switch v := members[i+1].(type) {
		case json.RawMessage:
			w.b = append(w.b, v...)
		case []byte:
			w.b = append(w.b, v...)
		case int:
			w.b = strconv.AppendInt(w.b, int64(v), 10)
		case string:
			s, _ := marshalJSON(v)
			w.b = append(w.b, s...)
		}
	}
	w.b = append(w.b, "}\n\n"...)
	w.seq++
}

// item writes the events of output item i (raw).
func (w *eventWriter) item(i int, raw json.RawMessage) bool {
	item, typ, ok := object(raw)
	if !ok {
		return false
	}
	itemID := item["id"]
	if itemID == nil {
		itemID = json.RawMessage(`null`)
	}
	begun := maps.Clone(item)
	var parts, summary []json.RawMessage
	switch typ {
	case "reasoning":
		// Its summary streamed part by part, as OpenAI streams it.
		if sm, ok := item["summary"]; ok && present(sm) && json.Unmarshal(sm, &summary) != nil {
			return false
		}
		if len(summary) > 0 {
			begun["summary"] = json.RawMessage(`[]`)
		}
	case "message":
		if c, ok := item["content"]; ok && present(c) && json.Unmarshal(c, &parts) != nil {
			return false
		}
		begun["content"] = json.RawMessage(`[]`)
		begun["status"] = json.RawMessage(`"in_progress"`)
	case "function_call":
		begun["arguments"] = json.RawMessage(`""`)
		if _, ok := item["status"]; ok {
			begun["status"] = json.RawMessage(`"in_progress"`)
		}
	case "custom_tool_call":
		begun["input"] = json.RawMessage(`""`)
	}
	b, err := marshalJSON(begun)
	if err != nil {
		return false
	}
	w.event("response.output_item.added", "output_index", i, "item", b)
	switch typ {
	case "reasoning":
		for k, p := range summary {
			if !w.summaryPart(i, k, itemID, p) {
				return false
			}
		}
	case "message":
		for j, p := range parts {
			if !w.part(i, j, itemID, p) {
				return false
			}
		}
	case "function_call", "custom_tool_call":
		// A call's arguments (a custom tool call's input) as one delta.
		member, events := "arguments", "response.function_call_arguments"
		if typ == "custom_tool_call" {
			member, events = "input", "response.custom_tool_call_input"
		}
		var v string
		if json.Unmarshal(item[member], &v) != nil {
			return false
		}
		w.event(events+".delta", "item_id", itemID, "output_index", i, "delta", v)
		w.event(events+".done", "item_id", itemID, "output_index", i, member, v)
	}
	w.event("response.output_item.done", "output_index", i, "item", raw)
	return true
}

// part writes the events of content part j of message item i.
func (w *eventWriter) part(i, j int, itemID, raw json.RawMessage) bool {
	p, typ, ok := object(raw)
	if !ok {
		return false
	}
	begun := maps.Clone(p)
	var text string
	switch typ {
	case "output_text":
		if json.Unmarshal(p["text"], &text) != nil {
			return false
		}
		begun["text"] = json.RawMessage(`""`)
		begun["annotations"] = json.RawMessage(`[]`)
		if _, ok := p["logprobs"]; ok {
			begun["logprobs"] = json.RawMessage(`[]`)
		}
	case "refusal":
		if json.Unmarshal(p["refusal"], &text) != nil {
			return false
		}
		begun["refusal"] = json.RawMessage(`""`)
	}
	b, err := marshalJSON(begun)
	if err != nil {
		return false
	}
	at := []any{"item_id", itemID, "output_index", i, "content_index", j}
	w.event("response.content_part.added", append(at, "part", b)...)
	switch typ {
	case "output_text":
		logprobs := json.RawMessage(`[]`)
		if l, ok := p["logprobs"]; ok && present(l) {
			logprobs = l
		}
		w.event("response.output_text.delta", append(at, "delta", text, "logprobs", logprobs)...)
		var annotations []json.RawMessage
		if a, ok := p["annotations"]; ok && present(a) && json.Unmarshal(a, &annotations) != nil {
			return false
		}
		for k, a := range annotations {
			w.event("response.output_text.annotation.added", append(at, "annotation_index", k, "annotation", a)...)
		}
		w.event("response.output_text.done", append(at, "text", text, "logprobs", logprobs)...)
	case "refusal":
		w.event("response.refusal.delta", append(at, "delta", text)...)
		w.event("response.refusal.done", append(at, "refusal", text)...)
	}
	w.event("response.content_part.done", append(at, "part", raw)...)
	return true
}

// summaryPart writes the events of summary part k of reasoning item i:
// a summary text as one delta.
func (w *eventWriter) summaryPart(i, k int, itemID, raw json.RawMessage) bool {
	p, typ, ok := object(raw)
	if !ok {
		return false
	}
	var text string
	begun := maps.Clone(p)
	if typ == "summary_text" {
		if json.Unmarshal(p["text"], &text) != nil {
			return false
		}
		begun["text"] = json.RawMessage(`""`)
	}
	b, err := marshalJSON(begun)
	if err != nil {
		return false
	}
	at := []any{"item_id", itemID, "output_index", i, "summary_index", k}
	w.event("response.reasoning_summary_part.added", append(at, "part", b)...)
	if typ == "summary_text" {
		w.event("response.reasoning_summary_text.delta", append(at, "delta", text)...)
		w.event("response.reasoning_summary_text.done", append(at, "text", text)...)
	}
	w.event("response.reasoning_summary_part.done", append(at, "part", raw)...)
	return true
}

// object reads raw as a JSON object, with its "type" ("" when it has
// none that is a string); false when it is not an object.
func object(raw json.RawMessage) (map[string]json.RawMessage, string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil, "", false
	}
	var typ string
	_ = json.Unmarshal(m["type"], &typ)
	return m, typ, true
}

// marshalJSON encodes v as compact JSON without HTML escapes (a replayed
// text is the text as the upstream wrote it).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
