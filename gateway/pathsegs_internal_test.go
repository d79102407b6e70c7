package gateway

import (
	"net/url"
	"strings"
	"testing"
)

// splitProblem is segmentProblem as pathError wrote it with strings.Split.
func splitProblem(path string) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." {
			return "a '" + seg + "' segment"
		}
		if seg == "" && i < len(segs)-1 {
			return "an empty segment (//)"
		}
	}
	return ""
}

// TestPathErrorWalksSegmentsInPlace: segmentProblem names the same
// problem as the strings.Split walk it replaced for every path of up to
// eight characters of '.', '/' and 'a' (a segment of one or two dots or
// of neither, empty or not, last or not), and pathError costs a valid
// request's path no allocation (it cost one: the slice of segments).
func TestPathErrorWalksSegmentsInPlace(t *testing.T) {
	const alphabet = "./a"
	var walk func(path string)
	n := 0
	walk = func(path string) {
		n++
		if got, want := segmentProblem(path), splitProblem(path); got != want {
			t.Fatalf("segmentProblem(%q) = %q, want %q", path, got, want)
		}
		if len(path) == 8 {
			return
		}
		for i := range len(alphabet) {
			walk(path + alphabet[i:i+1])
		}
	}
	walk("")
	if n != 9841 { // 3^0 + … + 3^8
		t.Fatalf("%d paths checked", n)
	}
	u, err := url.Parse("http://gw.test/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(100, func() {
		if pathError(u) != nil {
			t.Fatal("a valid path refused")
		}
	}); a != 0 {
		t.Errorf("pathError of a valid path: %v allocations, want 0", a)
	}
}
