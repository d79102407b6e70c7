package toolwrap_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// An artifact is scoped to its team's run: a run of another team with the
// same run id (a gateway's X-Run-Id is any text a team chooses) does not
// read it, from a store both teams share (before: team B's run "r1" read
// team A's artifact of run "r1" whole).
func TestArtifactOfAnotherTeamsRunOfTheSameIDIsNotFound(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) toolwrap.Store{
		"memory": func(*testing.T) toolwrap.Store { return toolwrap.NewMemoryStore(0) },
		"dir": func(t *testing.T) toolwrap.Store {
			s, err := toolwrap.NewDirStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			secret := strings.Repeat("team A's secret line\n", 200)
			ex := newArtifactExecutor(t, mk(t), secret)
			ctxA, _ := middleware.StartRun(middleware.WithTeam(context.Background(), "A"), "r1")
			res, err := ex.Execute(ctxA, []middleware.ToolCall{{ID: "c1", Name: "read_logs", Arguments: "{}"}})
			if err != nil || res[0].Artifact == "" {
				t.Fatalf("team A's result was not offloaded: %+v, %v", res[0], err)
			}
			args := `{"id":"` + res[0].Artifact + `"}`
			if got := readArtifact(t, ex, ctxA, args); got.Err != nil || !strings.Contains(got.Content, "team A's secret line") {
				t.Fatalf("team A cannot read its own artifact: %q, %v", got.Content, got.Err)
			}
			for _, team := range []string{"B", ""} {
				ctxB, _ := middleware.StartRun(middleware.WithTeam(context.Background(), team), "r1")
				got := readArtifact(t, ex, ctxB, args)
				if strings.Contains(got.Content, "secret") || got.Err == nil || !strings.Contains(got.Content, "not found") {
					t.Errorf("team %q's run r1 read team A's artifact of run r1: %q, %v", team, got.Content, got.Err)
				}
			}
		})
	}
}
