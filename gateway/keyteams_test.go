package gateway_test

import (
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestKeyOfATeamWithoutAPolicyIsLogged: a key whose team has no policy
// file is served under the default policy. The gateway says so when it
// starts, once per key, and names the team with a file the key's team is
// likely a typo of ("devps" beside devops.yaml), so that the devops team's
// budget not applying to the key is not silent.
func TestKeyOfATeamWithoutAPolicyIsLogged(t *testing.T) {
	e := start(t, nil, "  - {name: typo-key, team: devps, sha256: "+gateway.HashKey("sk-typo-0123456789")+"}\n"+
		"  - {name: new-key, team: research, sha256: "+gateway.HashKey("sk-new-0123456789")+"}\n")
	var typo, other string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(l, "team has no policy file") {
			continue
		}
		switch {
		case strings.Contains(l, `"key":"typo-key"`):
			typo = l
		case strings.Contains(l, `"key":"new-key"`):
			other = l
		default:
			t.Errorf("a warning of a key whose team has a file: %s", l)
		}
	}
	if !strings.Contains(typo, `"did_you_mean":"devops"`) || !strings.Contains(typo, "default policy") {
		t.Errorf("the warning of team devps: %q; want one naming devops", typo)
	}
	if other == "" || strings.Contains(other, "did_you_mean") {
		t.Errorf("the warning of team research: %q; want one without a suggestion", other)
	}
}
