package toolwrap_test

import (
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/toolwrap"
)

// Under any bounds of ArtifactConfig, however small the answer or long
// the line, reading an artifact in pieces as the answers say gives it
// back byte for byte: every range answer shows at least one line (before,
// with MaxLineBytes 5000 and MaxReadBytes 1000 a read at a line of 3,000
// bytes answered "lines 1-0 of 4", no line and no way on).
func TestReadArtifactInPiecesUnderAnyBounds(t *testing.T) {
	t.Parallel()
	contents := []string{
		"short\n" + strings.Repeat("é", 1500) + "\n日本\nend",
		strings.Repeat("x", 3000),
		strings.Repeat("\x80", 700) + "\n\xff\xfe" + strings.Repeat("日", 400),
		"a\n\nb\n",
		strings.Repeat("line\n", 300),
	}
	for _, lineBytes := range []int{1, 3, 4, 50, 200, 5000} {
		for _, readBytes := range []int{1, 100, 300, 1000, 16 << 10} {
			for _, readLines := range []int{1, 3, 200} {
				cfg := toolwrap.ArtifactConfig{MaxLineBytes: lineBytes, MaxReadBytes: readBytes, MaxReadLines: readLines, ReadLines: readLines}
				for _, content := range contents {
					tool, ctx, id, _ := fuzzArtifact(t, cfg, []byte(content))
					got := strings.Join(readWhole(t, tool, ctx, id, toolwrap.NewText([]byte(content)).Lines()), "\n")
					if got != content && got+"\n" != content {
						t.Fatalf("%+v: read back %d bytes of %d", cfg, len(got), len(content))
					}
				}
			}
		}
	}
}
