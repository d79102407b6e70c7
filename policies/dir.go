package policies

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultTeam is the file stem of the policy used for calls without a team
// (or with a team that has no file): default.yaml in a policy directory.
const DefaultTeam = "default"

// Set is the policies of a directory, one per team, with extends resolved.
// A Set is immutable once loaded and safe for concurrent use.
type Set struct {
	// Dir is the directory the set was loaded from.
	Dir string
	// Teams maps a team (the file name without extension: devops.yaml →
	// "devops") to its merged, validated policy.
	Teams map[string]*Policy
	// Files maps a team to its file.
	Files map[string]string
}

// Policy returns the policy of team: its own file, else default.yaml of
// the directory, else the embedded Default.
func (s *Set) Policy(team string) *Policy {
	if p, ok := s.Teams[team]; ok {
		return p
	}
	if p, ok := s.Teams[DefaultTeam]; ok {
		return p
	}
	return Default()
}

// Names returns the teams of the set, sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.Teams))
	for t := range s.Teams {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// policyFile reports whether name is a policy file: .yaml, .yml or .json,
// not hidden (editors' swap and backup files are skipped).
func policyFile(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// teamResult is the outcome of loading one team file.
type teamResult struct {
	team, file string
	policy     *Policy
	err        error
}

// loadTeams loads every policy file of dir (not recursively), each with
// its extends chain, and returns one result per file, sorted by team, and
// the directories other than dir of the files the chains read or tried to
// read (bases in subdirectories), sorted: a watch of dir must watch them
// too.
func loadTeams(dir string) ([]teamResult, []string, error) {
	// Opening a FIFO blocks until a writer comes: stat first.
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("tokenwise/policies: %w", err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%w: %s is not a directory", ErrNotRegularFile, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenwise/policies: %w", err)
	}
	r, err := newResolver(dir)
	if err != nil {
		return nil, nil, err
	}
	var out []teamResult
	seen := map[string]string{}
	for _, e := range ents {
		if !policyFile(e.Name()) { // a directory or FIFO named as a team file fails in read
			continue
		}
		team := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		file := filepath.Join(dir, e.Name())
		res := teamResult{team: team, file: file}
		if other, dup := seen[team]; dup {
			res.err = &ValidationError{Problems: []Problem{{File: r.display(mustAbs(file)),
				Msg: fmt.Sprintf("team %q has two policy files: %s and %s", team, filepath.Base(other), e.Name())}}}
		} else {
			seen[team] = file
			res.policy, res.err = r.resolve(mustAbs(file))
			if res.err == nil {
				noteWeights(res.policy)
			}
		}
		out = append(out, res)
	}
	slices.SortFunc(out, func(a, b teamResult) int { return strings.Compare(a.file, b.file) })
	top := mustAbs(dir)
	var dirs []string
	for f := range r.tried {
		if d := filepath.Dir(f); d != top && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return out, dirs, nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return filepath.Clean(a)
	}
	return p
}

// LoadDir loads a directory of policy files, one per team (devops.yaml is
// team "devops", default.yaml the policy of callers without a team), each
// able to extend another file of the directory (see the package
// documentation for the merge rules). Subdirectories are not read, so a
// directory of bases that are not teams can sit beside them.
//
// LoadDir is all or nothing: when any file is invalid it returns a
// *ValidationError listing every problem of every file, each with
// file:line:col and field path.
func LoadDir(dir string) (*Set, error) {
	s, _, err := loadDir(dir)
	return s, err
}

// loadDir is LoadDir, also returning the directories of bases outside dir
// (see loadTeams).
func loadDir(dir string) (*Set, []string, error) {
	res, dirs, err := loadTeams(dir)
	if err != nil {
		return nil, nil, err
	}
	s := &Set{Dir: dir, Teams: map[string]*Policy{}, Files: map[string]string{}}
	var probs []Problem
	var others []error
	for _, r := range res {
		if r.err != nil {
			var ve *ValidationError
			if errors.As(r.err, &ve) {
				probs = append(probs, ve.Problems...)
			} else {
				others = append(others, r.err)
			}
			continue
		}
		s.Teams[r.team] = r.policy
		s.Files[r.team] = r.file
	}
	if len(probs) > 0 || len(others) > 0 {
		probs = dedupProblems(probs)
		slices.SortStableFunc(probs, func(a, b Problem) int {
			if c := strings.Compare(a.File, b.File); c != 0 {
				return c
			}
			if a.Line != b.Line {
				return a.Line - b.Line
			}
			return a.Column - b.Column
		})
		if len(others) > 0 {
			if len(probs) > 0 {
				others = append(others, &ValidationError{Problems: probs})
			}
			return nil, nil, errors.Join(others...)
		}
		return nil, nil, &ValidationError{Problems: probs}
	}
	return s, dirs, nil
}
