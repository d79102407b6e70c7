package main

import (
	"bytes"
	"os"
	"testing"
)

// TestPolicySchemaMatchesShippedFile: `tokenwise policy schema` prints
// exactly policies/schema.json.
func TestPolicySchemaMatchesShippedFile(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"policy", "schema"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want, err := os.ReadFile("../../policies/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Error("output differs from policies/schema.json")
	}
}
