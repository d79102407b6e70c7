package policies

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const teamYAML = "version: 1\nrouting: {default: gpt-4o}\n"

// TestPolicyFromFIFOIsAnError: a FIFO, a directory, a socket or a device
// named as a team file or as an extends target is an error matching
// ErrNotRegularFile, returned at once (a blocking read would hang the test,
// which has no writer on the FIFO).
func TestPolicyFromFIFOIsAnError(t *testing.T) {
	t.Parallel()
	special := map[string]func(t *testing.T, path string){
		"fifo": func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		},
		"directory": func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		},
		"socket": func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Skipf("unix socket: %v", err)
			}
			t.Cleanup(func() { l.Close() })
		},
		"device": func(t *testing.T, path string) {
			if err := os.Symlink(os.DevNull, path); err != nil {
				t.Skipf("symlink: %v", err)
			}
		},
	}
	for kind, make := range special {
		t.Run(kind+"/LoadFile", func(t *testing.T) {
			path := filepath.Join(shortTempDir(t), "team.yaml")
			make(t, path)
			if _, err := LoadFile(path); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("LoadFile: err = %v, want ErrNotRegularFile", err)
			}
			if _, err := LoadFileExtends(path); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("LoadFileExtends: err = %v, want ErrNotRegularFile", err)
			}
		})
		t.Run(kind+"/team file", func(t *testing.T) {
			dir := shortTempDir(t)
			writeFiles(t, dir, map[string]string{"default.yaml": teamYAML})
			make(t, filepath.Join(dir, "ops.yaml"))
			_, err := LoadDir(dir)
			if !errors.Is(err, ErrNotRegularFile) || !errors.Is(err, ErrInvalid) {
				t.Errorf("LoadDir: err = %v, want ErrNotRegularFile in a *ValidationError", err)
			}
			if _, err := NewRegistry(dir); !errors.Is(err, ErrNotRegularFile) {
				t.Errorf("NewRegistry: err = %v, want ErrNotRegularFile", err)
			}
		})
		t.Run(kind+"/extends target", func(t *testing.T) {
			dir := shortTempDir(t)
			writeFiles(t, dir, map[string]string{"ops.yaml": "version: 1\nextends: base.yaml\n"})
			make(t, filepath.Join(dir, "base.yaml"))
			root := dir
			if kind == "device" {
				root = "/" // the link to /dev/null leaves dir
			}
			_, err := LoadFileExtendsIn(filepath.Join(dir, "ops.yaml"), root)
			if !errors.Is(err, ErrNotRegularFile) {
				t.Fatalf("err = %v, want ErrNotRegularFile", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Problems[0].Path != "extends" || ve.Problems[0].Line != 2 {
				t.Errorf("err = %v, want the problem at ops.yaml:2 extends", err)
			}
		})
	}
}

// TestPolicyDirectoryThatIsAFIFOIsAnError: LoadDir and NewRegistry of a
// FIFO fail at once instead of waiting for a writer.
func TestPolicyDirectoryThatIsAFIFOIsAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policies")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := LoadDir(path); !errors.Is(err, ErrNotRegularFile) {
		t.Errorf("LoadDir: err = %v, want ErrNotRegularFile", err)
	}
	if _, err := NewRegistry(path); !errors.Is(err, ErrNotRegularFile) {
		t.Errorf("NewRegistry: err = %v, want ErrNotRegularFile", err)
	}
}

// shortTempDir is a temporary directory with a path short enough for a
// unix socket (108 bytes on Linux).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestRegistryReloadWithFIFOKeepsTheLastGoodPolicy: a FIFO that appears in
// a watched directory fails its reload without blocking it.
func TestRegistryReloadWithFIFOKeepsTheLastGoodPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"default.yaml": teamYAML, "ops.yaml": teamYAML})
	reg, err := NewRegistry(dir, WithRegistryLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	good := reg.Policy("ops")
	if err := os.Remove(filepath.Join(dir, "ops.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "ops.yaml"), 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := reg.Reload(); !errors.Is(err, ErrNotRegularFile) {
		t.Errorf("Reload: err = %v, want ErrNotRegularFile", err)
	}
	if reg.Policy("ops") != good {
		t.Error("the team lost its last good policy")
	}
}

const secret = "sk-proj-SECRETabcdefghijklmnopqrstuvwxyz0123456789"

// TestNonPolicyFileIsNeverQuoted: a file that is not a policy — .env
// named by extends, or given to LoadFile, in any shape the parser may read
// as a scalar, a list or a syntax error — fails without its contents in
// the message.
func TestNonPolicyFileIsNeverQuoted(t *testing.T) {
	t.Parallel()
	bodies := []string{
		"OPENAI_API_KEY=" + secret + "\n",
		"OPENAI_API_KEY=" + secret + "\nOTHER=1\n",
		"export OPENAI_API_KEY=\"" + secret + "\"\n",
		"OPENAI_API_KEY=\"" + secret + "\n",
		"- " + secret + "\n",
		"\"" + secret + "\"\n",
		"key: [" + secret + "\n",
		"OPENAI_API_KEY: " + secret + "\n  bad: indent\n",
		"{" + secret + "\n",
		"'" + secret + "'\n---\nx: y\n",
		"OPENAI_API_KEY: " + secret + "\nDATABASE_URL: postgres://u:" + secret + "@db\n",
		"services:\n  api:\n    environment:\n      - KEY=" + secret + "\n",
	}
	for i, body := range bodies {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			".env":         body,
			"secrets.yaml": body,
			"a.yaml":       "version: 1\nextends: .env\n",
			"b.yaml":       "version: 1\nextends: secrets.yaml\n",
		})
		check := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Errorf("body %d, %s: no error", i, what)
				return
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("body %d, %s: the message quotes the file:\n%v", i, what, err)
			}
		}
		_, err := LoadFileExtends(filepath.Join(dir, "a.yaml"))
		check("extends: .env", err)
		if !errors.Is(err, ErrNotPolicy) {
			t.Errorf("body %d, extends: .env: err = %v, want ErrNotPolicy", i, err)
		}
		_, err = LoadFileExtends(filepath.Join(dir, "b.yaml"))
		check("extends: secrets.yaml", err)
		_, err = LoadFile(filepath.Join(dir, ".env"))
		check("LoadFile(.env)", err)
		_, err = LoadDir(dir)
		check("LoadDir", err)
	}
	// A typo of a field still reads as a policy, with its suggestion.
	_, err := LoadBytes([]byte("budjet: {}\n"), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), `did you mean "budget"`) {
		t.Errorf("a lone typo: %v", err)
	}
}

// TestEveryProblemAtOnceThroughExtends: a team file with an unknown key, a
// value of the wrong type and a semantic problem gets all three in one
// error, each with file:line:col and field path — alone (LoadFile) and
// extending a base (LoadFileExtends, LoadDir, NewRegistry).
func TestEveryProblemAtOnceThroughExtends(t *testing.T) {
	t.Parallel()
	const body = `routing:
  defualt: gpt-4o
  rules:
    - name: r
      when: {keywords: [x]}
      model: no-such-model
limits: {max_calls: many}
`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"default.yaml": baseYAML,
		"ops.yaml":     "version: 1\nextends: default.yaml\n" + body,
		"solo.yaml":    "version: 1\n\n" + body,
	})
	loads := map[string]func() error{
		"LoadFile":        func() error { _, err := LoadFile(filepath.Join(dir, "solo.yaml")); return err },
		"LoadFileExtends": func() error { _, err := LoadFileExtends(filepath.Join(dir, "ops.yaml")); return err },
		"LoadDir":         func() error { _, err := LoadDir(dir); return err },
		"NewRegistry":     func() error { _, err := NewRegistry(dir); return err },
	}
	want := []struct {
		path      string
		line, col int
		msg       string
	}{
		{"routing.defualt", 4, 3, "unknown field"},
		{"routing.rules[0].model", 8, 7, "unknown model"},
		{"limits.max_calls", 9, 21, "expected an integer"},
	}
	for name, load := range loads {
		err := load()
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: err = %v, want a *ValidationError", name, err)
		}
		for _, file := range []string{"ops.yaml", "solo.yaml"} {
			if name == "LoadFile" && file == "ops.yaml" || name == "LoadFileExtends" && file == "solo.yaml" {
				continue
			}
			var n int
			for _, w := range want {
				found := false
				for _, p := range ve.Problems {
					if p.File == filepath.Join(dir, file) && p.Path == w.path && p.Line == w.line && p.Column == w.col && strings.Contains(p.Msg, w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: missing %s:%d:%d: %s: %s…\ngot:\n%v", name, file, w.line, w.col, w.path, w.msg, err)
				}
			}
			for _, p := range ve.Problems {
				if p.File == filepath.Join(dir, file) {
					n++
				}
			}
			if n != len(want) {
				t.Errorf("%s: %d problems in %s, want %d:\n%v", name, n, file, len(want), err)
			}
		}
	}
}
