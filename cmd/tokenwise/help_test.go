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

// TestUnknownCommandIsNamed: a command tokenwise does not have (a typo,
// `polcy check`, or a subcommand without its group, `check` for `policy
// check`) is named with the command it is likely meant to be, before the
// usage, exit 2; before, only the usage came back, and the user had to
// find the difference.
func TestUnknownCommandIsNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "examples/policies/"}, `tokenwise: unknown command "check" (did you mean "tokenwise policy check" or "tokenwise gateway check"?)`},
		{[]string{"explain", "p/", "--team", "x"}, `tokenwise: unknown command "explain" (did you mean "tokenwise policy explain"?)`},
		{[]string{"polcy", "check", "p/"}, `tokenwise: unknown command "polcy check" (did you mean "tokenwise policy check"?)`},
		{[]string{"gateway", "chek", "g.yaml"}, `tokenwise: unknown command "gateway chek" (did you mean "tokenwise gateway check"?)`},
		{[]string{"init"}, `tokenwise: unknown command "init" (did you mean "tokenwise gateway init"?)`},
		{[]string{"bogus"}, `tokenwise: unknown command "bogus"` + "\n"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != 2 || !strings.HasPrefix(stderr, c.want) || !strings.Contains(stderr, "usage:") {
			t.Errorf("tokenwise %s: exit %d, stderr:\n%s\nwant exit 2, %q first, then the usage", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}
