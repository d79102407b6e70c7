package main

import (
	"fmt"
	"io"

	"github.com/tokenwise/tokenwise/policies"
)

// schema writes the JSON Schema of policy files:
//
//	go run ./cmd/tokenwise policy schema > policies/schema.json
func schema(stdout, stderr io.Writer) int {
	b, err := policies.JSONSchema()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := stdout.Write(b); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
