package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/policies"
)

// Defaults of a zero Config field.
const (
	DefaultListen            = "127.0.0.1:8787"
	DefaultMaxBody           = 4 << 20
	DefaultMaxUpload         = 512 << 20
	DefaultUpstreamIdle      = 10 * time.Minute
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownGrace     = 30 * time.Second
	DefaultRunIdle           = time.Hour
	DefaultMaxRuns           = 100_000
	DefaultRedisPrefix       = "tokenwise"
	// MaxFileSize bounds a gateway file.
	MaxFileSize = 1 << 20
)

// ErrInvalidConfig matches every error of a gateway file that fails its
// checks (a *policies.ValidationError listing every problem, each with its
// line and field path).
var ErrInvalidConfig = errors.New("tokenwise/gateway: invalid gateway file")

// Config is a gateway file (gateway.yaml). Load it with [LoadConfig] or
// [ParseConfig], which check it strictly (unknown keys, wrong types,
// durations without a unit, and the semantic checks: required fields,
// addresses and URLs, keys' hashes, duplicates, negative limits).
// [Config.KeyTeamProblems] checks its keys' teams against a policy
// directory.
type Config struct {
	// Listen is the address the gateway listens on. Empty: 127.0.0.1:8787
	// (loopback: put a TLS-terminating proxy in front to expose it).
	Listen string `yaml:"listen,omitempty"`
	// Policies is the policy directory, one file per team and a
	// default.yaml, hot reloaded. A relative path is relative to the
	// gateway file's directory. Required.
	Policies string `yaml:"policies"`
	// Upstreams are the OpenAI-compatible servers the gateway calls. A
	// request goes to the first upstream whose Models list names its
	// model, else to the first upstream. At least one.
	Upstreams []Upstream `yaml:"upstreams"`
	// Keys are the virtual keys: each maps a bearer token, stored as its
	// SHA-256, to a team. A reload of the file (SIGHUP, or Server.Reload)
	// applies a changed list: a key removed is refused from then on.
	Keys []Key `yaml:"keys"`
	// Redis shares budgets, runs (of X-Run-Id: their call counts, starts
	// and per-run budgets), the response cache, rate limits and circuit
	// breakers between replicas. Zero: state in memory, per replica.
	Redis Redis `yaml:"redis,omitempty"`
	// Limits are the HTTP server's limits. Zero: defaults.
	Limits Limits `yaml:"limits,omitempty"`
	// PassUnpoliced lets a team with a budget call the billable endpoints
	// the gateway does not police (legacy completions, images, audio,
	// batches, fine-tuning, realtime, videos, decisions, agent sessions,
	// Assistants runs…): without it they are refused with an
	// OpenAI-shaped 403, so that no spend escapes the budget. Chat
	// completions, embeddings and the Responses API are policed; a team
	// without a budget passes every endpoint.
	PassUnpoliced bool `yaml:"pass_unpoliced,omitempty"`
	// CORS lets web pages of the origins it lists call the gateway from a
	// browser (the official SDKs' browser mode). Zero: no CORS headers,
	// and browsers refuse cross-origin calls.
	CORS CORS `yaml:"cors,omitempty"`

	dir  string // directory of the file, for relative paths
	file string
	src  *policies.Source // where its fields are, for KeyTeamProblems
}

// Upstream is one OpenAI-compatible server.
type Upstream struct {
	// Name names the upstream in logs and /v1/models. Required, unique.
	Name string `yaml:"name"`
	// BaseURL is the API base, e.g. https://api.openai.com/v1 (requests go
	// to BaseURL + "/chat/completions"). Required: http or https. A query
	// (an Azure deployment's ?api-version=) is sent with every request,
	// before the client's own.
	BaseURL string `yaml:"base_url"`
	// APIKeyEnv names the environment variable holding the API key; New
	// refuses to start when it is unset or empty.
	APIKeyEnv string `yaml:"api_key_env,omitempty"`
	// APIKeyFile is a file holding the API key (surrounding white space is
	// trimmed; New refuses a file of white space only). A relative path is
	// relative to the gateway file.
	APIKeyFile string `yaml:"api_key_file,omitempty"`
	// APIKey is refused: a key is never written in a gateway file. It is
	// only decoded to say so (without echoing it).
	APIKey string `yaml:"api_key,omitempty"`
	// Models are the models this upstream serves, for routing requests and
	// for GET /v1/models. Empty on the first upstream: every model.
	Models []string `yaml:"models,omitempty"`
	// Organization and Project are sent with every call to this upstream
	// as OpenAI-Organization and OpenAI-Project: the organization and
	// project its key bills. A client's own are never forwarded (the
	// gateway's key is not theirs: OpenAI refuses a key with another
	// organization's header, and a key of several would bill the one the
	// client names). Empty: not sent.
	Organization string `yaml:"organization,omitempty"`
	Project      string `yaml:"project,omitempty"`
}

// Key is one virtual key.
type Key struct {
	// Name identifies the key in logs and events (the key itself never
	// appears there). Required, unique.
	Name string `yaml:"name"`
	// Team is the team whose policy serves the key's calls. Required.
	Team string `yaml:"team"`
	// SHA256 is the lowercase hex SHA-256 of the bearer token
	// (`printf %s "$KEY" | sha256sum`). Required.
	SHA256 string `yaml:"sha256"`
}

// Redis configures the shared state.
type Redis struct {
	// Addr is host:port of the Redis server. Empty: no Redis.
	Addr string `yaml:"addr,omitempty"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `yaml:"password_env,omitempty"`
	// DB is the Redis database number.
	DB int `yaml:"db,omitempty"`
	// Prefix namespaces every key of the gateway's state (the breaker's,
	// the cache's and the runs'; budgets, per-run budgets included, use the
	// policies' budget.store.key_prefix). Empty: "tokenwise".
	Prefix string `yaml:"prefix,omitempty"`
}

// CORS is the gateway's answer to browsers (Cross-Origin Resource
// Sharing).
type CORS struct {
	// AllowedOrigins are the origins (scheme://host[:port], as a browser
	// sends them in Origin) whose pages may call the gateway; "*" is any
	// origin. The virtual key is still required on every call.
	AllowedOrigins []string `yaml:"allowed_origins,omitempty"`
	// MaxAge is how long a browser may keep a preflight's answer. Zero:
	// 10m.
	MaxAge policies.Duration `yaml:"max_age,omitempty"`
}

// Limits are the HTTP server's limits.
type Limits struct {
	// MaxBody is the largest request body the gateway reads and holds to
	// police it: a chat completion's, a Responses API call's, an
	// embeddings call's. Zero: 4MiB.
	MaxBody policies.ByteSize `yaml:"max_body,omitempty"`
	// MaxUpload is the largest body of any other passed-through request
	// (a file upload, an upload's part, an audio file to transcribe),
	// which the gateway streams to the upstream as it comes without
	// holding it. Zero: 512MiB, the API's own limit on a file.
	MaxUpload policies.ByteSize `yaml:"max_upload,omitempty"`
	// ReadHeaderTimeout bounds reading a request's headers. Zero: 10s.
	ReadHeaderTimeout policies.Duration `yaml:"read_header_timeout,omitempty"`
	// ReadTimeout bounds reading a request's body, from the end of its
	// headers to its last byte: a body that has not come whole by then is
	// answered an OpenAI-shaped 408 and its connection closed. It does not
	// bound the answer (a stream runs as long as the team's timeouts let
	// it). An upload streamed to the upstream (max_upload) is bounded
	// between two of its pieces instead, so that a large file that keeps
	// coming is never cut. Zero: 30s.
	ReadTimeout policies.Duration `yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds each write of an answer to its client: a write
	// the client does not take in within it (a client that stopped
	// reading, a dead connection) ends the call (its upstream call
	// cancelled, its reservation settled as a disconnect's). It is armed
	// again at every write, so a long stream read steadily is never cut.
	// A stream under a team policy with timeouts.idle gets that limit
	// instead. Zero: 60s.
	WriteTimeout policies.Duration `yaml:"write_timeout,omitempty"`
	// UpstreamIdle bounds a passed-through call the gateway does not
	// police (files, uploads, audio, images, legacy completions with
	// pass_unpoliced, a model's or a background response's retrieval),
	// which no team timeout bounds: the upstream must read each next
	// piece of the request's body, send its answer's headers and each
	// next piece of the answer within it, or the call ends (an
	// OpenAI-shaped 504 before the answer began, a cut answer after). The
	// clock runs only while the gateway waits for the upstream, never
	// for the client. It bounds a chat completion's attempt the same way
	// when nothing else bounds it in time: its team's policy sets no
	// timeouts.call, timeouts.total nor limits.run_timeout for it (a team
	// file that neither extends the default policy nor writes timeouts:).
	// Zero: 10m (the OpenAI SDKs' own request timeout).
	UpstreamIdle policies.Duration `yaml:"upstream_idle,omitempty"`
	// IdleTimeout closes keep-alive connections idle this long. Zero: 2m.
	IdleTimeout policies.Duration `yaml:"idle_timeout,omitempty"`
	// ShutdownGrace is how long a shutdown lets running requests (streams
	// included) finish before it cuts them. Zero: 30s.
	ShutdownGrace policies.Duration `yaml:"shutdown_grace,omitempty"`
	// RunIdle forgets a run (its X-Run-Id, its per-run budget and guard)
	// after this long without a call: in memory, and with Redis the run's
	// keys expire then. Zero: 1h.
	RunIdle policies.Duration `yaml:"run_idle,omitempty"`
	// MaxRuns bounds the runs remembered (least recently used are
	// forgotten first; with Redis, a run forgotten by a replica is still
	// the same run in Redis). Zero: 100000.
	MaxRuns int `yaml:"max_runs,omitempty"`
}

// LoadConfig reads and checks the gateway file at path.
func LoadConfig(path string) (*Config, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/gateway: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("tokenwise/gateway: %s is not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("tokenwise/gateway: %s is larger than %d bytes", path, MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenwise/gateway: %w", err)
	}
	return ParseConfig(b, path)
}

// ParseConfig decodes and checks a gateway file; name is the file's path
// (relative paths in the file are resolved against its directory). Every
// problem is reported at once in a *policies.ValidationError (matching
// ErrInvalidConfig and policies.ErrInvalid), each with its line and field.
func ParseConfig(b []byte, name string) (*Config, error) {
	c := &Config{}
	src, probs, parsed := policies.DecodeStrict(b, name, c)
	c.dir, c.file, c.src = filepath.Dir(name), name, src
	if parsed {
		probs = append(probs, c.problems(src)...)
	}
	for i := range probs {
		// (A key can be a field's name too: "- {sk-…}".)
		probs[i].Path = maskKeyLike(probs[i].Path, b)
		probs[i].Msg = maskKeyLike(probs[i].Msg, b)
	}
	if err := policies.Invalid(probs); err != nil {
		return nil, &configError{err}
	}
	return c, nil
}

// maskKeyLike replaces in msg (a problem's message or field path) every
// key-like word of the gateway file src — a run of 20 or more letters,
// digits, '-' and '_' with both a letter and a digit in it, whose last 20
// bytes the file holds — by "[redacted]": a key written where the file
// expects something else ("upstreams: sk-…") is never echoed by the
// problem that reports it.
func maskKeyLike(msg string, src []byte) string {
	isWord := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	var out strings.Builder
	for i := 0; i < len(msg); {
		if !isWord(msg[i]) {
			out.WriteByte(msg[i])
			i++
			continue
		}
		j := i
		letter, digit := false, false
		for j < len(msg) && isWord(msg[j]) {
			c := msg[j]
			letter = letter || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			digit = digit || c >= '0' && c <= '9'
			j++
		}
		// The word's last 20 bytes are in src whenever the word is, or a
		// longer tail of it: a quoted value escapes a byte before the key
		// ("\x10sk-…" is the word "x10sk-…" of the message), or cuts it.
		if w := msg[i:j]; j-i >= 20 && letter && digit && bytes.Contains(src, []byte(w[len(w)-20:])) {
			out.WriteString("[redacted]")
		} else {
			out.WriteString(w)
		}
		i = j
	}
	return out.String()
}

// configError matches ErrInvalidConfig and unwraps to the
// *policies.ValidationError.
type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrInvalidConfig }

// problems runs the semantic checks.
func (c *Config) problems(src *policies.Source) []policies.Problem {
	var ps []policies.Problem
	add := func(path, format string, args ...any) { ps = append(ps, src.Problem(path, format, args...)) }
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen", "not a host:port address")
		} else if port != "" {
			// As net.Listen reads it: a number up to 65535 or a service
			// name (the local services database; no network).
			if _, err := net.LookupPort("tcp", port); err != nil {
				if len(port) > 40 {
					port = port[:40] + "..."
				}
				add("listen", "invalid port %q: want a number from 0 to 65535", port)
			}
		}
	}
	if c.Policies == "" {
		add("policies", "required: the policy directory (one file per team, and default.yaml)")
	} else if st, err := os.Stat(c.path(c.Policies)); err != nil || !st.IsDir() {
		add("policies", "%s is not a directory", c.path(c.Policies))
	}
	if len(c.Upstreams) == 0 {
		add("upstreams", "required: at least one upstream with name and base_url")
	}
	names := map[string]bool{}
	for i, u := range c.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case u.Name == "":
			add(p+".name", "required")
		case names[u.Name]:
			add(p+".name", "upstream %q is named twice", u.Name)
		}
		names[u.Name] = true
		if u.BaseURL == "" {
			add(p+".base_url", "required, e.g. https://api.openai.com/v1")
		} else if pu, err := url.Parse(u.BaseURL); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add(p+".base_url", "not an http(s) URL")
		} else if strings.EqualFold(pu.Hostname(), "api.openai.com") && pu.Path != "/v1" && !strings.HasPrefix(pu.Path, "/v1/") {
			// OpenAI serves its API under /v1 alone: any other base
			// answers every call 404.
			add(p+".base_url", "OpenAI serves its API under /v1: write https://api.openai.com/v1 (requests go to base_url + /chat/completions)")
		}
		if u.APIKey != "" {
			add(p+".api_key", "a key is never written in the gateway file: name an environment variable (api_key_env) or a file (api_key_file)")
		}
		if u.APIKeyEnv != "" && !isEnvName(u.APIKeyEnv) {
			// Never quoted: what stands here is most likely the key.
			add(p+".api_key_env", "takes the name of an environment variable (letters, digits and _, e.g. OPENAI_API_KEY), not the key: a key is never written in the gateway file")
		}
		if u.APIKeyEnv != "" && u.APIKeyFile != "" {
			add(p+".api_key_file", "set api_key_env or api_key_file, not both")
		}
		if u.APIKeyFile != "" {
			if _, err := os.Stat(c.path(u.APIKeyFile)); err != nil {
				add(p+".api_key_file", "cannot read %s", c.path(u.APIKeyFile))
			}
		}
		for field, v := range map[string]string{"organization": u.Organization, "project": u.Project} {
			if !headerValue(v) {
				add(p+"."+field, "not a header value: at most 256 printable ASCII characters, e.g. org-… or proj_…")
			}
		}
	}
	keyNames, hashes := map[string]bool{}, map[string]bool{}
	for i, k := range c.Keys {
		p := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.Name == "":
			add(p+".name", "required")
		case keyNames[k.Name]:
			add(p+".name", "key %q is named twice", k.Name)
		}
		keyNames[k.Name] = true
		if k.Team == "" {
			add(p+".team", "required: the team whose policy serves this key")
		}
		h := strings.ToLower(k.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			add(p+".sha256", "not a SHA-256 in hex (64 characters): store the hash of the key, never the key")
		} else if hashes[h] {
			add(p+".sha256", "the same key is listed twice")
		}
		hashes[h] = true
	}
	if c.Limits.MaxBody < 0 {
		add("limits.max_body", "must not be negative")
	}
	if c.Limits.MaxUpload < 0 {
		add("limits.max_upload", "must not be negative")
	}
	for i, o := range c.CORS.AllowedOrigins {
		if why := originProblem(o); why != "" {
			add(fmt.Sprintf("cors.allowed_origins[%d]", i), "%q %s", o, why)
		}
	}
	if c.CORS.MaxAge < 0 {
		add("cors.max_age", "must not be negative")
	}
	if c.Limits.MaxRuns < 0 {
		add("limits.max_runs", "must not be negative")
	}
	for path, d := range map[string]policies.Duration{
		"limits.read_header_timeout": c.Limits.ReadHeaderTimeout, "limits.idle_timeout": c.Limits.IdleTimeout,
		"limits.read_timeout": c.Limits.ReadTimeout, "limits.write_timeout": c.Limits.WriteTimeout,
		"limits.shutdown_grace": c.Limits.ShutdownGrace, "limits.run_idle": c.Limits.RunIdle,
		"limits.upstream_idle": c.Limits.UpstreamIdle,
	} {
		if d < 0 {
			add(path, "must not be negative")
		}
	}
	if c.Redis.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
			add("redis.addr", "not a host:port address")
		}
	}
	return ps
}

// Warnings returns what is valid in c but is likely not what was meant: an
// upstream's base_url without a path (http://localhost:8000), where the
// OpenAI-compatible servers (vLLM, Ollama, LiteLLM, TGI) serve the API
// under /v1 and answer every call at the root with a 404. (OpenAI's own
// without its /v1 is an error of the file.) `tokenwise gateway check`
// prints them and New logs them; they do not stop the gateway, as a
// server may serve the API at its root.
func (c *Config) Warnings() []policies.Problem {
	var out []policies.Problem
	for i, u := range c.Upstreams {
		pu, err := url.Parse(u.BaseURL)
		if err != nil || pu.Host == "" || strings.EqualFold(pu.Hostname(), "api.openai.com") || strings.Trim(pu.Path, "/") != "" {
			continue
		}
		// Quoted as scheme and host only: no user info, no query.
		root := pu.Scheme + "://" + pu.Host
		if len(root) > 120 {
			root = strings.ToValidUTF8(root[:120], "") + "…"
		}
		out = append(out, c.src.Problem(fmt.Sprintf("upstreams[%d].base_url", i),
			"%s has no path: OpenAI-compatible servers (vLLM, Ollama, LiteLLM) serve the API under /v1 and answer %s/chat/completions with a 404: write %s/v1, unless this server serves the API at its root",
			root, root, root))
	}
	return out
}

// KeyTeamProblems checks the teams of the keys against the policy
// directory: known are the teams that have a policy file (as
// policies.Set.Names and Registry.Names list them) and unknown the default
// policy's teams.unknown. A key whose team has no file is served under the
// default policy. When the team is a typo of one that has a file ("devps"
// beside devops.yaml), that is almost surely not what was meant: an error,
// with a "did you mean". So is any such key under teams.unknown: error,
// whose calls are all refused. Otherwise it is a warning.
func (c *Config) KeyTeamProblems(known []string, unknown policies.UnknownTeams) (errs, warnings []policies.Problem) {
	for _, k := range c.keyTeamIssues(known) {
		p := fmt.Sprintf("keys[%d].team", k.index)
		switch {
		case unknown == policies.UnknownTeamsError:
			errs = append(errs, c.src.Problem(p, "team %q has no policy file in %s%s: the key's calls are refused (teams.unknown: error)",
				k.team, c.PolicyDir(), didYouMean(k.suggestion)))
		case k.suggestion != "":
			errs = append(errs, c.src.Problem(p, "team %q has no policy file in %s%s: the key's calls would get the default policy",
				k.team, c.PolicyDir(), didYouMean(k.suggestion)))
		default:
			warnings = append(warnings, c.src.Problem(p, "team %q has no policy file in %s: the key's calls get the default policy", k.team, c.PolicyDir()))
		}
	}
	return errs, warnings
}

// keyTeamIssue is a key whose team has no policy file.
type keyTeamIssue struct {
	index      int
	name, team string
	suggestion string // the team with a file it is likely a typo of; "" when none
}

// keyTeamIssues returns the keys whose team is not "default" nor in known.
func (c *Config) keyTeamIssues(known []string) []keyTeamIssue {
	var out []keyTeamIssue
	for i, k := range c.Keys {
		if k.Team == "" || k.Team == policies.DefaultTeam || slices.Contains(known, k.Team) {
			continue // (a missing team is a problem of the file)
		}
		out = append(out, keyTeamIssue{index: i, name: k.Name, team: k.Team, suggestion: policies.Suggest(k.Team, known)})
	}
	return out
}

func didYouMean(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", s)
}

// path resolves p against the gateway file's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// PolicyDir returns the policy directory, resolved against the file's.
func (c *Config) PolicyDir() string { return c.path(c.Policies) }

// File returns the path the config was loaded from ("" when built in code).
func (c *Config) File() string { return c.file }

// isEnvName reports whether s is the name of an environment variable a
// shell exports: [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// apiKey reads the key of upstream i from its environment variable or
// file. A variable unset or empty, or a file of white space only, is an
// error at the field's line that says how to give the key: read as no key,
// every call would go to the upstream without one.
func (c *Config) apiKey(i int, u Upstream) (string, error) {
	switch {
	case u.APIKeyEnv != "":
		k, ok := os.LookupEnv(u.APIKeyEnv)
		if !ok || k == "" {
			state := "is not set"
			if ok {
				state = "is empty"
			}
			return "", fmt.Errorf("tokenwise/gateway: %s", c.src.Problem(fmt.Sprintf("upstreams[%d].api_key_env", i),
				"environment variable %s %s: export %s=<the key of upstream %s> in the shell that starts the gateway, or name a file that holds it in api_key_file (api_key_env: \"\" for a server that takes no key)",
				u.APIKeyEnv, state, u.APIKeyEnv, u.Name))
		}
		return k, nil
	case u.APIKeyFile != "":
		b, err := os.ReadFile(c.path(u.APIKeyFile))
		if err != nil {
			return "", fmt.Errorf("tokenwise/gateway: %s", c.src.Problem(fmt.Sprintf("upstreams[%d].api_key_file", i),
				"reading the key of upstream %s: %v: name a file that holds the upstream's key", u.Name, err))
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("tokenwise/gateway: %s", c.src.Problem(fmt.Sprintf("upstreams[%d].api_key_file", i),
				"%s holds no key: name a file that holds the upstream's key (api_key_file removed for a server that takes none)", c.path(u.APIKeyFile)))
		}
		return k, nil
	}
	return "", nil // an upstream without a key (a local server)
}

func durationOr(d policies.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.Duration()
	}
	return def
}

// HashKey returns the hex SHA-256 of a virtual key, as a gateway file's
// keys[].sha256 stores it.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// ShutdownGrace returns limits.shutdown_grace or its default.
func (c *Config) ShutdownGrace() time.Duration {
	return durationOr(c.Limits.ShutdownGrace, DefaultShutdownGrace)
}

// headerValue reports whether v can be sent as a header's value as is:
// at most 256 printable ASCII characters (an ID, no line break).
func headerValue(v string) bool {
	if len(v) > 256 {
		return false
	}
	for i := range len(v) {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
