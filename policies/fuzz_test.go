package policies

import (
	"errors"
	"os"
	"testing"
)

// FuzzLoadPolicy: whatever the bytes, LoadBytes returns, without panicking
// and within the limits, either a policy that validates or a
// *ValidationError whose every problem names the file and a position.
// The seed corpus is testdata/fuzz/FuzzLoadPolicy (the repository's policy
// files and every input that ever failed) plus the files found at run time.
func FuzzLoadPolicy(f *testing.F) {
	for _, path := range repoPolicyFiles(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	base := Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		const name = "fuzz.yaml"
		// The same bytes as a team file over the default policy: the
		// extends merge and the validation of its result never panic.
		child := &Policy{}
		src := &sourceMap{file: name, pos: map[string]position{}}
		if _, parsed := decodeDocument(b, child, src); parsed {
			_ = mergePolicies(base, child, src).problems()
		}

		const maxMsg = 512 // values are quoted up to maxEcho bytes
		p, err := LoadBytes(b, name)
		if err == nil {
			if p == nil {
				t.Fatal("nil policy and nil error")
			}
			if verr := p.Validate(); verr != nil {
				t.Fatalf("loaded policy fails Validate: %v", verr)
			}
			return
		}
		if p != nil {
			t.Fatalf("a policy and an error: %v", err)
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %T %v, want a *ValidationError", err, err)
		}
		if len(ve.Problems) == 0 {
			t.Fatal("a *ValidationError without problems")
		}
		for _, pr := range ve.Problems {
			if pr.File != name {
				t.Errorf("problem %q names file %q", pr, pr.File)
			}
			if pr.Line < 1 || pr.Column < 1 {
				t.Errorf("problem %q has no position", pr)
			}
			if pr.Msg == "" || len(pr.Msg) > maxMsg {
				t.Errorf("problem %q: message of %d bytes, want 1 to %d", pr, len(pr.Msg), maxMsg)
			}
		}
	})
}
