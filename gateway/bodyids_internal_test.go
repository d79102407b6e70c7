package gateway

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// refsRead returns the ids v (a body as encoding/json decodes it: the last
// of a member given twice, as the upstream reads it) names where the
// upstream reads one: bodyMembers' strings and arrays of strings at any
// depth but under metadata, an eval run's file source, and a top-level
// ft: model.
func refsRead(v any, top bool, fam *ownedFamily, out map[bodyRef]bool) {
	switch v := v.(type) {
	case string:
		if fam != nil && v != "" {
			out[bodyRef{fam, v}] = true
		}
	case []any:
		for _, e := range v {
			refsRead(e, false, fam, out)
		}
	case map[string]any:
		if t, _ := v["type"].(string); t == "file_id" {
			if id, _ := v["id"].(string); id != "" {
				out[bodyRef{familyOf("/files"), id}] = true
			}
		}
		for name, m := range v {
			switch {
			case name == "metadata":
			case top && name == "model":
				if s, _ := m.(string); strings.HasPrefix(s, "ft:") {
					out[bodyRef{fineTunedModels, s}] = true
				}
			default:
				refsRead(m, false, bodyMembers[name], out)
			}
		}
	}
}

// FuzzBodyIDs: whatever the bytes, bodyIDs does not panic; a body
// encoding/json reads is read without error, and every id the upstream
// would read in it (refsRead) is among those bodyIDs returns — with its
// members' names escaped, given twice, nested — and mayNameIDs lets it be
// read.
func FuzzBodyIDs(f *testing.F) {
	for _, s := range []string{
		`{"file_id":"file-1"}`,
		`{"file\u005fid":"file-1","file_id":"file-2"}`,
		`{"tool_resources":{"code_interpreter":{"file_ids":["file-1","file-2"]}}}`,
		`{"model":"ft:gpt-4o-mini:org::x","input":[{"type":"input_file","file_id":"file-3"}]}`,
		`{"m\u006fdel":"\u0066t:x"}`,
		`{"data_source":{"source":{"type":"file_id","id":"file-9"}}}`,
		`{"metadata":{"file_id":"file-1"},"tools":[{"type":"file_search","vector_store_ids":["vs_1"]}]}`,
		`{"container":"cntr_1","assistant_id":"asst_1","training_file":"file-1","validation_file":"file-2","input_file_id":"file-3"}`,
		`[{"file_id":"x"}]`, `{"file_id":[[["file-1"]]]}`, `{"a":NaN,"file_id":"f"}`, `{"file_id":"f"} {"file_id":"g"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		refs, err := bodyIDs(body)
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		if err != nil {
			t.Fatalf("%q: encoding/json reads it, bodyIDs: %v", body, err)
		}
		want := map[bodyRef]bool{}
		refsRead(v, true, nil, want)
		got := map[bodyRef]bool{}
		for _, r := range refs {
			got[r] = true
		}
		for r := range want {
			if !got[r] {
				t.Fatalf("%q: the upstream reads %s %q; bodyIDs: %v", body, r.fam.path, r.id, refs)
			}
		}
		if len(want) > 0 && !mayNameIDs(body) {
			t.Fatalf("%q names ids, mayNameIDs false", body)
		}
		for r := range want {
			if r.fam != fineTunedModels && !mayName(body, false) {
				t.Fatalf("%q names %s %q, mayName(body, false) is false", body, r.fam.path, r.id)
			}
		}
	})
}

// chatBodyOfProse is a 50-message chat call whose text says the words the
// id members are named by ("left:", "container", file_id) as prose does.
func chatBodyOfProse() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o","messages":[`)
	for i := range 50 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"role":"user","content":"Two left: the container of draft: notes names its file_id and vector_store_id in \"file_id\" form; the assistant_id too. `)
		b.WriteString(strings.Repeat("More of the same prose. ", 15))
		b.WriteString(`"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// TestChatProseIsNotDecodedForIDs: a chat call whose messages only say the
// words ids are named by is not decoded token by token (mayNameIDs is
// false), while the same words as members or an ft: model are.
func TestChatProseIsNotDecodedForIDs(t *testing.T) {
	body := chatBodyOfProse()
	if mayNameIDs(body) {
		t.Fatalf("a chat call of prose (%d bytes) is decoded for the ids it names", len(body))
	}
	if refs, err := bodyIDs(body); err != nil || len(refs) != 0 {
		t.Fatalf("bodyIDs of prose: %v, %v", refs, err)
	}
	for _, s := range []string{
		`{"model":"ft:gpt-4o-mini:org::x","messages":[]}`,
		`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`,
		`{"tools":[{"type":"code_interpreter","container":"cntr_1"}]}`,
		`{"input_file_id":"file-1"}`, `{"vector_store_ids":["vs_1"]}`, `{"assistant_id":"asst_1"}`,
		`{"training_file":"file-1"}`, `{"validation_file":"file-1"}`, `{"file_ids":["file-1"]}`,
		`{"source":{"type":"file_id","id":"file-1"}}`,
	} {
		refs, err := bodyIDs([]byte(s))
		if err != nil || len(refs) == 0 {
			t.Fatalf("%s: bodyIDs %v, %v", s, refs, err)
		}
		if !mayNameIDs([]byte(s)) {
			t.Errorf("%s names %q but mayNameIDs is false", s, refs[0].id)
		}
	}
}

// BenchmarkChatBodyIDs is what the id check costs a 50-message chat call
// of prose: the prefilter, and the token-by-token read it spares.
func BenchmarkChatBodyIDs(b *testing.B) {
	body := chatBodyOfProse()
	b.Run("prefilter", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			mayNameIDs(body)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_, _ = bodyIDs(body)
		}
	})
}

// TestMayNameIDsIsTheWordScan: the one-pass prefilter says true exactly
// when the body holds one of the words a member's name ends with (its
// closing quote), the opening of an ft: string, or an escaped ASCII
// character — for random bodies made of those words' pieces.
func TestMayNameIDsIsTheWordScan(t *testing.T) {
	words := [...]string{`file_id"`, `file_ids"`, `training_file"`, `validation_file"`, `vector_store_id"`, `vector_store_ids"`, `assistant_id"`, `"container"`, `"ft:`}
	scan := func(body []byte) bool {
		for _, w := range words {
			if bytes.Contains(body, []byte(w)) {
				return true
			}
		}
		for b := body; ; {
			i := bytes.Index(b, []byte(`\u00`))
			if i < 0 || i+5 >= len(b) {
				return false
			}
			if c := b[i+4]; c >= '0' && c <= '7' {
				return true
			}
			b = b[i+4:]
		}
	}
	pieces := []string{`"`, `file`, `_id`, `_ids`, `s`, `training_`, `validation_`, `vector_store`, `assistant`, `container`, `ft`, `:`, `f`, `t:`, `\u00`, `5f`, `x`, ` `, `{`, `}`, `,`, `\"`, `id"`, `e"`, `r"`}
	r := rand.New(rand.NewPCG(rand.Uint64(), 3))
	hits := 0
	for range 200000 {
		var b []byte
		for range r.IntN(12) {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		want := scan(b)
		if want {
			hits++
		}
		if got := mayNameIDs(b); got != want {
			t.Fatalf("mayNameIDs(%q) = %v, the word scan says %v", b, got, want)
		}
	}
	if hits == 0 {
		t.Fatal("no body held a word")
	}
}

// TestChatOfAFineTunedModelIsNotDecodedForIDs: a chat call's wire JSON
// (whose model chatRefs reads from the decoding) is not decoded token by
// token for its ft: model, nor for the \u003c, \u003e and \u0026 Go's
// encoders write for <, > and &; an escaped member name still is.
func TestChatOfAFineTunedModelIsNotDecodedForIDs(t *testing.T) {
	msg, err := json.Marshal("Explain <b>bold</b> & <i>italic</i>, left: draft:")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"model":"ft:gpt-4o-mini:org::x","messages":[{"role":"user","content":` + string(msg) + `}]}`)
	if !strings.Contains(string(body), `\u003c`) {
		t.Fatalf("encoding/json did not escape <: %s", body)
	}
	if mayName(body, false) {
		t.Errorf("a chat call of a fine-tuned model is decoded for its ids: %s", body)
	}
	if !mayNameIDs(body) {
		t.Errorf("another endpoint's body naming an ft: model is not decoded: %s", body)
	}
	for _, s := range []string{`{"file\u005fid":"file-1"}`, `{"messages":[{"content":[{"type":"file","file":{"fil\u0065_id":"file-1"}}]}]}`} {
		if !mayName([]byte(s), false) {
			t.Errorf("%s names a file, mayName(body, false) is false", s)
		}
	}
}
