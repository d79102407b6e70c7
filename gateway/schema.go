package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/tokenwise/tokenwise/policies"
)

// SchemaID is the $id of the gateway file's JSON Schema.
const SchemaID = "https://github.com/tokenwise/tokenwise/gateway/schema.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of the gateway file,
// generated from Config like the policy schema: every object allows only
// its own keys (an inline api_key is not one), api_key_env is a variable's
// name (never a key), durations need a unit, a
// key's sha256 is 64 hex digits. gateway/schema.json in the repository is
// this output, kept in sync by a test; regenerate it with
//
//	go run ./cmd/tokenwise gateway schema > gateway/schema.json
func JSONSchema() ([]byte, error) {
	root := policies.StructSchema(reflect.TypeFor[Config]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "tokenwise gateway"
	root["description"] = "The gateway file of tokenwise serve: listen address, policy directory, upstreams, virtual keys, Redis and limits."
	root["required"] = []string{"policies", "upstreams"}
	props := root["properties"].(map[string]any)
	props["upstreams"].(map[string]any)["minItems"] = 1
	up := props["upstreams"].(map[string]any)["items"].(map[string]any)
	delete(up["properties"].(map[string]any), "api_key") // never inline
	up["required"] = []string{"name", "base_url"}
	up["properties"].(map[string]any)["base_url"].(map[string]any)["pattern"] = `^https?://[^/\s]+`
	up["properties"].(map[string]any)["api_key_env"].(map[string]any)["pattern"] = `^([A-Za-z_][A-Za-z0-9_]*)?$`
	key := props["keys"].(map[string]any)["items"].(map[string]any)
	key["required"] = []string{"name", "team", "sha256"}
	key["properties"].(map[string]any)["sha256"].(map[string]any)["pattern"] = `^[0-9a-fA-F]{64}$`
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
