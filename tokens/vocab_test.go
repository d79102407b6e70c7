package tokens

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/tiktoken-go/tokenizer"
)

// tokenOf returns the bytes of token id in t ("" for an id without a
// token).
func tokenOf(t *rankTable, id int) string {
	end := len(t.block)
	if id+1 < len(t.start) {
		end = int(t.start[id+1])
	}
	return t.block[t.start[id]:end]
}

// TestVocabularyIsTiktokenGos checks the ranks read from OpenAI's
// vocabulary files against tiktoken-go's codec, every id of both
// encodings: the same bytes for each id, the same ids with a token, and
// every token found at its own rank.
func TestVocabularyIsTiktokenGos(t *testing.T) {
	for _, enc := range []tokenizer.Encoding{tokenizer.O200kBase, tokenizer.Cl100kBase} {
		b, err := loadBPE(string(enc))
		if err != nil {
			t.Fatal(err)
		}
		c, err := tokenizer.Get(enc)
		if err != nil {
			t.Fatal(err)
		}
		ids, misses := 0, 0
		for id := 0; misses < 1024; id++ {
			want, err := c.Decode([]uint{uint(id)})
			if err != nil {
				want = "" // a special token or a gap: not in the vocabulary
			}
			got := ""
			if id < len(b.ranks.start) {
				got = tokenOf(b.ranks, id)
			}
			if got != want {
				t.Fatalf("%s: id %d: %q, tiktoken-go %q", enc, id, got, want)
			}
			if want == "" {
				misses++
				continue
			}
			misses = 0
			ids++
			if r, ok := b.ranks.get(want); !ok || int(r) != id {
				t.Fatalf("%s: %q: rank %d, %v; want %d", enc, want, r, ok, id)
			}
		}
		if ids < 100_000 {
			t.Fatalf("%s: only %d tokens", enc, ids)
		}
		t.Logf("%s: %d tokens, the same as tiktoken-go's", enc, ids)
	}
}

func TestParseTiktokenRejectsMalformedFiles(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "no token"},
		{"no rank", "IQ==\n", "line 1"},
		{"no bytes", " 0\n", "line 1"},
		{"bad base64", "IQ== 0\n!! 1\n", "line 2"},
		{"bad rank", "IQ== x\n", "line 1: rank"},
		{"negative rank", "IQ== -1\n", "line 1: rank"},
		{"rank back", "IQ== 0\nIg== 0\n", "line 2: rank 0 after rank 0"},
		{"empty token", "IQ== 0\n= 1\n", "line 2"},
	} {
		_, _, err := parseTiktoken([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// Gaps in the ranks are ranks without a token.
	block, ends, err := parseTiktoken([]byte("IQ== 0\nIg== 3\n\nIw== 4"))
	if err != nil || string(block) != "!\"#" || fmt.Sprint(ends) != "[1 -1 -1 2 3]" {
		t.Fatalf("%q %v %v", block, ends, err)
	}
}

// TestVocabulariesAreNotScanned loads both vocabularies in a process of
// its own and checks that the heap the garbage collector scans grew by
// less than a megabyte: the ranks hold no pointer. (tiktoken-go's
// vocabulary map and its codec's reverse vocabulary were 10 MB of
// pointers for o200k_base alone, scanned at every cycle.)
func TestVocabulariesAreNotScanned(t *testing.T) {
	if os.Getenv("TOKENWISE_SCAN_CHILD") != "" {
		scan := func() uint64 {
			runtime.GC()
			s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
			metrics.Read(s)
			return s[0].Value.Uint64()
		}
		e := New()
		before := scan()
		n := e.Text("gpt-4o", "hello world") + e.Text("gpt-4", "hello world")
		fmt.Printf("grew %d tokens %d\n", int64(scan())-int64(before), n)
		runtime.KeepAlive(e)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVocabulariesAreNotScanned$")
	cmd.Env = append(os.Environ(), "TOKENWISE_SCAN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "grew ")
	if !ok {
		t.Fatalf("no report:\n%s", out)
	}
	var grew, n int64
	if _, err := fmt.Sscanf(rest, "%d tokens %d", &grew, &n); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if n != 4 {
		t.Fatalf("counted %d tokens, want 2+2", n)
	}
	if grew > 1<<20 {
		t.Fatalf("the scanned heap grew by %s bytes loading the vocabularies", strconv.FormatInt(grew, 10))
	}
	t.Logf("scanned heap grew by %d bytes", grew)
}
