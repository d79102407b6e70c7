package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// TestNewSaysWhereAndHowToGiveTheUpstreamsKey: the first thing a new
// gateway meets without its key (tokenwise serve in a shell that did not
// export it, a key file not mounted or empty) says the field, at its line,
// and what to do — never a bare "environment variable X is not set", and
// never an empty key file read as no key, every call then sent without
// one.
func TestNewSaysWhereAndHowToGiveTheUpstreamsKey(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pols"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pols", "default.yaml"), []byte("version: 1\nname: default\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.key"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TW_TEST_KEY_UNSET", "")
	os.Unsetenv("TW_TEST_KEY_UNSET")
	t.Setenv("TW_TEST_KEY_EMPTY", "")
	for _, c := range []struct {
		key  string
		want []string
	}{
		{"api_key_env: TW_TEST_KEY_UNSET", []string{"gateway.yaml:7:5: upstreams[1].api_key_env: ", "TW_TEST_KEY_UNSET is not set", "export TW_TEST_KEY_UNSET=", "api_key_file"}},
		{"api_key_env: TW_TEST_KEY_EMPTY", []string{"gateway.yaml:7:5: upstreams[1].api_key_env: ", "TW_TEST_KEY_EMPTY is empty", "export TW_TEST_KEY_EMPTY=", "api_key_file"}},
		{"api_key_file: empty.key", []string{"gateway.yaml:7:5: upstreams[1].api_key_file: ", "empty.key holds no key", "a file that holds the upstream's key"}},
	} {
		file := "policies: pols\nupstreams:\n  - name: local\n    base_url: http://127.0.0.1:8000/v1\n  - name: openai\n    base_url: https://api.openai.com/v1\n    " + c.key + "\n"
		path := filepath.Join(dir, "gateway.yaml")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := gateway.LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		srv, err := gateway.New(cfg)
		if err == nil {
			srv.Close()
			t.Errorf("%s: New succeeded", c.key)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not say %q", c.key, msg, w)
			}
		}
	}
}
