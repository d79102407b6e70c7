package gateway_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/tokenwise/tokenwise/gateway"
)

// gateway/schema.json is JSONSchema's output (regenerate it with
// `go run ./cmd/tokenwise gateway schema > gateway/schema.json`).
func TestSchemaFileInSync(t *testing.T) {
	want, err := gateway.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("gateway/schema.json is stale: go run ./cmd/tokenwise gateway schema > gateway/schema.json")
	}
	for _, s := range []string{`"api_key_env"`, `"sha256"`, `"additionalProperties": false`} {
		if !bytes.Contains(want, []byte(s)) {
			t.Errorf("schema lacks %s", s)
		}
	}
	if bytes.Contains(want, []byte(`"api_key":`)) {
		t.Errorf("the schema allows an inline api_key")
	}
}
