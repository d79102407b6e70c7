package main

import (
	"strings"
	"testing"
)

// TestHelpExitsZero: `tokenwise -h`, `tokenwise help`, `tokenwise
// serve -h`, `tokenwise gateway init -h`, `tokenwise route eval -h` and
// the other commands' -h print the usage and exit 0, not 2 as for a wrong
// command. Asking for help is not an error (flag.ExitOnError exits 0 on -h
// too); a script that runs `tokenwise serve -h` to check the install must
// not fail.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-h"}, {"gateway", "init", "-h"}, {"route", "eval", "-h"},
		{"route", "-h"}, {"route", "train", "-h"}, {"policy", "check", "-h"}, {"policy", "explain", "-h"}, {"policy", "schema", "-h"},
		{"replay", "-h"}, {"catalog", "import", "-h"}, {"gateway", "check", "-h"}, {"gateway", "schema", "-h"}} {
		code, out, stderr := runCmd(args...)
		if code != 0 {
			t.Errorf("tokenwise %s: exit %d (help printed: %t)", strings.Join(args, " "), code, strings.Contains(out+stderr, "sage"))
		}
		if !strings.Contains(out+stderr, "sage") {
			t.Errorf("tokenwise %s: no usage printed", strings.Join(args, " "))
		}
	}
	// A wrong command is still a usage error.
	for _, args := range [][]string{{}, {"bogus"}, {"serve", "-bogus"}, {"route", "eval"}} {
		if code, _, _ := runCmd(args...); code != 2 {
			t.Errorf("tokenwise %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

// TestHelpNamesEachFlagsArgument: every flag line of a command's -h reads
// "-name ARG", one word for its argument, as flag.PrintDefaults prints it
// from the first `backquoted` word of the usage. `route eval -h` once
// printed "-weights tokenwise route train": the usage backquoted a command
// ("weights file of `tokenwise route train`"), which flag took for the
// argument's name.
func TestHelpNamesEachFlagsArgument(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"gateway", "init", "-h"}, {"route", "eval", "-h"},
		{"route", "train", "-h"}, {"policy", "explain", "-h"}, {"replay", "-h"}, {"catalog", "import", "-h"}} {
		_, out, stderr := runCmd(args...)
		for line := range strings.Lines(out + stderr) {
			// flag.PrintDefaults: "  -name ARG" (a short one: "  -name ARG\tusage").
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			flagLine, _, _ := strings.Cut(strings.TrimSpace(line), "\t")
			if f := strings.Fields(flagLine); len(f) > 2 {
				t.Errorf("tokenwise %s: flag line %q names its argument in %d words", strings.Join(args, " "), strings.TrimSpace(line), len(f)-1)
			}
		}
	}
}
