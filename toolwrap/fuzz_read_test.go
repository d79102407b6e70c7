package toolwrap_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// fuzzArtifact stores content as an artifact of run "run-A" (and another
// artifact of run "run-B") and returns the read tool, the context of
// run-A, run-A's id and run-B's id.
func fuzzArtifact(t testing.TB, cfg toolwrap.ArtifactConfig, content []byte) (toolwrap.Tool, context.Context, string, string) {
	t.Helper()
	a := toolwrap.NewArtifacts(toolwrap.NewMemoryStore(0), cfg, func(s string) int64 { return int64(len(s)) })
	ctx, _ := middleware.StartRun(context.Background(), "run-A")
	id, other := toolwrap.NewID(), toolwrap.NewID()
	if err := a.Store().Put(ctx, "run-A", id, toolwrap.NewText(content)); err != nil {
		t.Fatal(err)
	}
	if err := a.Store().Put(ctx, "run-B", other, toolwrap.NewText([]byte("secret of run B\n"))); err != nil {
		t.Fatal(err)
	}
	return a.ReadTool(), ctx, id, other
}

var readHeader = regexp.MustCompile(`^\[(art_[A-Z2-7]{26}) lines (\d+)-(-?\d+) of (\d+)`)
var readOn = regexp.MustCompile(`\{"id":"art_[A-Z2-7]{26}","offset":(\d+),"byte":(\d+)\}`)
var lineHeader = regexp.MustCompile(`^\[art_[A-Z2-7]{26} line (\d+) bytes (\d+)-(\d+) of (\d+)`)

// readWhole reads the artifact id back as a model following the answers
// would: ranges from offset 0 to the end, and every line cut with … on by
// byte from where its answer says, until the line's end. It returns the
// lines read.
func readWhole(t testing.TB, tool toolwrap.Tool, ctx context.Context, id string, lines int) []string {
	t.Helper()
	call := func(args string) string {
		t.Helper()
		out, err := tool.Call(ctx, args)
		if err != nil {
			t.Fatalf("read %s: %v", args, err)
		}
		return out
	}
	var got []string
	for off := 0; off < lines; {
		out := call(`{"id":"` + id + `","offset":` + strconv.Itoa(off) + `}`)
		head, body, _ := strings.Cut(out, "]\n")
		m := readHeader.FindStringSubmatch(head)
		if m == nil {
			t.Fatalf("offset %d: answer %.200q has no range header", off, out)
		}
		from, _ := strconv.Atoi(m[2])
		to, _ := strconv.Atoi(m[3])
		if from != off || to < from {
			t.Fatalf("offset %d: header %q shows no line", off, head)
		}
		shown := strings.Split(body, "\n")
		if len(shown) != to-from+1 {
			t.Fatalf("offset %d: header %q, %d lines in the body", off, head, len(shown))
		}
		for i, l := range shown {
			if strings.HasSuffix(l, "…") {
				// Cut: read it on by byte from where the cut is.
				cut := len(l) - len("…")
				l = l[:cut] + readRest(t, call, id, off+i, cut)
			}
			got = append(got, l)
		}
		off = to + 1
	}
	return got
}

// readRest reads line i of id on by byte from b to its end.
func readRest(t testing.TB, call func(string) string, id string, i, b int) string {
	t.Helper()
	var rest strings.Builder
	for n := 0; ; n++ {
		if n > 1<<16 {
			t.Fatalf("line %d: reading on by byte does not end", i)
		}
		out := call(`{"id":"` + id + `","offset":` + strconv.Itoa(i) + `,"byte":` + strconv.Itoa(b) + `}`)
		head, body, _ := strings.Cut(out, "]\n")
		m := lineHeader.FindStringSubmatch(head)
		if m == nil {
			t.Fatalf("line %d byte %d: answer %.200q has no line header", i, b, out)
		}
		from, _ := strconv.Atoi(m[2])
		to, _ := strconv.Atoi(m[3])
		size, _ := strconv.Atoi(m[4])
		if from != b || to <= from || len(body) != to-from {
			t.Fatalf("line %d byte %d: header %q with %d bytes: not the bytes asked for", i, b, head, len(body))
		}
		rest.WriteString(body)
		if to == size {
			return rest.String()
		}
		on := readOn.FindStringSubmatch(head)
		if on == nil || on[2] != strconv.Itoa(to) {
			t.Fatalf("line %d: header %q says not how to read on from byte %d", i, head, to)
		}
		b = to
	}
}

func addReadSeeds(f *testing.F) {
	f.Add([]byte("a\nb\nc"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(strings.Repeat("x", 1000) + "\n" + strings.Repeat("é", 500) + "\nend"))
	f.Add([]byte(strings.Repeat("日本語", 300)))
	f.Add([]byte(strings.Repeat("\x80", 700)))
	f.Add([]byte("a\xff\xfe" + strings.Repeat("\xbf", 400) + "\n"))
}

// Reading an artifact in pieces, as the answers say, gives back every
// line of it byte for byte, whatever its content (invalid UTF-8, long
// lines, multi-byte characters across the cut), and the artifact is the
// lines joined by "\n" (and a trailing newline).
func FuzzReadArtifactInPiecesGivesItBack(f *testing.F) {
	addReadSeeds(f)
	f.Fuzz(func(t *testing.T, content []byte) {
		cfg := toolwrap.ArtifactConfig{MaxReadBytes: 2 << 10, MaxReadLines: 20}
		tool, ctx, id, _ := fuzzArtifact(t, cfg, content)
		want := toolwrap.NewText(content)
		got := readWhole(t, tool, ctx, id, want.Lines())
		joined := strings.Join(got, "\n")
		if joined != string(content) && joined+"\n" != string(content) {
			t.Fatalf("read back %d lines, %d bytes; want %d bytes", len(got), len(joined), len(content))
		}
	})
}

// Whatever arguments a model gives read_artifact, it answers without a
// panic or a hang with either a bounded answer or a bounded error, never
// reads another run's artifact, and a range answer's lines are exactly
// the artifact's lines it names.
func FuzzReadArtifactArguments(f *testing.F) {
	for _, a := range []string{
		`{"id":"ID"}`, `{"id":"ID","offset":1,"limit":2}`, `{"id":"ID","offset":-5,"limit":-1}`,
		`{"id":"ID","offset":"3","limit":5.0}`, `{"id":"ID","offset":1e300}`, `{"id":"ID","grep":"a"}`,
		`{"id":"ID","grep":"(("}`, `{"id":"ID","offset":0,"byte":3}`, `{"id":"ID","offset":0,"byte":-3}`,
		`{"id":"OTHER"}`, `"ID"`, `ID`, `{"id":"../../etc/passwd"}`, `{"id":5}`, `not json`, `{"id":"ID","offset":99999999999999999999}`,
		`{"id":"ID","grep":"","offset":2}`, `{"id":"ID","grep":"\\x{80}"}`, `{"id":"ID","byte":9223372036854775807}`,
	} {
		f.Add([]byte("a\nb\xff\nc"+strings.Repeat("é", 300)), a)
	}
	f.Fuzz(func(t *testing.T, content []byte, args string) {
		cfg := toolwrap.ArtifactConfig{MaxReadBytes: 2 << 10}
		tool, ctx, id, other := fuzzArtifact(t, cfg, content)
		args = strings.ReplaceAll(strings.ReplaceAll(args, "OTHER", other), "ID", id)
		out, err := tool.Call(ctx, args)
		if err != nil {
			if msg := err.Error(); len(msg) > 400 || msg == "" {
				t.Fatalf("error of %d bytes: %.400q", len(msg), msg)
			}
			return
		}
		if out == "" {
			t.Fatal("empty answer and no error")
		}
		if len(out) > cfg.MaxReadBytes+256 {
			t.Fatalf("answer of %d bytes, over the %d a read holds", len(out), cfg.MaxReadBytes)
		}
		if strings.Contains(out, "secret of run B") {
			t.Fatalf("args %q read run B's artifact: %q", args, out)
		}
		head, body, _ := strings.Cut(out, "]\n")
		if m := readHeader.FindStringSubmatch(head); m != nil {
			if m[1] != id {
				t.Fatalf("answer about %s, not %s", m[1], id)
			}
			from, _ := strconv.Atoi(m[2])
			to, _ := strconv.Atoi(m[3])
			want := toolwrap.NewText(content)
			if to < from {
				t.Fatalf("header %q shows no line", head)
			}
			for i, l := range strings.Split(body, "\n") {
				full := want.Line(from + i)
				if l != full && !(strings.HasSuffix(l, "…") && strings.HasPrefix(full, strings.TrimSuffix(l, "…"))) {
					t.Fatalf("line %d read as %.100q, is %.100q", from+i, l, full)
				}
			}
		}
		if m := lineHeader.FindStringSubmatch(head); m != nil {
			i, _ := strconv.Atoi(m[1])
			from, _ := strconv.Atoi(m[2])
			to, _ := strconv.Atoi(m[3])
			line := toolwrap.NewText(content).Line(i)
			if from > to || to > len(line) || line[from:to] != body {
				t.Fatalf("line %d bytes %d-%d: %.100q is not those bytes", i, from, to, body)
			}
		}
		_ = json.Valid
		_ = utf8.ValidString
	})
}
