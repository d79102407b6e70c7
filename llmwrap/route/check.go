package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tokenwise/tokenwise/middleware"
)

// ErrRejected is matched by every *RejectedError: a cascade step's answer
// failed a check.
var ErrRejected = errors.New("tokenwise/route: answer rejected")

// RejectedError says which check rejected which model's answer.
type RejectedError struct {
	Model string
	Check string // "valid_tool_json", "non_empty", "finish_reason" or a custom check's name
	Err   error  // the reason
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s: %s failed: %v", e.Model, e.Check, e.Err)
}

// Is matches ErrRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the reason.
func (e *RejectedError) Unwrap() error { return e.Err }

// Check is a custom acceptance check of a cascade step: a non-nil error
// rejects the answer and escalates the call. Checks must be safe for
// concurrent use and must not modify req or resp.
type Check func(req *middleware.Request, resp *middleware.Response) error

// NamedCheck is a cascade check and the name its rejections carry.
type NamedCheck struct {
	Name  string
	Check Check
}

// BuiltinChecks returns the built-in checks list names, in its order (all
// of them when it names none; a name it does not know is left out): what
// a cascade of routing.cascade.checks runs.
func BuiltinChecks(list []CheckName) []NamedCheck {
	if len(list) == 0 {
		list = []CheckName{CheckValidToolJSON, CheckNonEmpty, CheckFinishReason}
	}
	var out []NamedCheck
	for _, c := range list {
		switch c {
		case CheckValidToolJSON:
			out = append(out, NamedCheck{string(c), ValidToolJSON})
		case CheckNonEmpty:
			out = append(out, NamedCheck{string(c), NonEmpty})
		case CheckFinishReason:
			out = append(out, NamedCheck{string(c), FinishedCleanly})
		}
	}
	return out
}

// NonEmpty rejects an answer with neither text nor tool calls.
func NonEmpty(_ *middleware.Request, resp *middleware.Response) error {
	if len(resp.Message.ToolCalls) == 0 && strings.TrimSpace(resp.Message.Text()) == "" {
		return errors.New("empty answer")
	}
	return nil
}

// FinishedCleanly rejects an answer whose finish reason is not a normal
// end (middleware.FinishedNormally: stop, tool_calls, or a server's own
// name for stop such as Together's "eos"): cut by max tokens, filtered,
// or unknown.
func FinishedCleanly(_ *middleware.Request, resp *middleware.Response) error {
	if middleware.FinishedNormally(resp.FinishReason) {
		return nil
	}
	return fmt.Errorf("finish reason %q", resp.FinishReason)
}

// ValidToolJSON rejects tool calls that name a tool the request did not
// offer, or whose arguments are not a JSON object matching the tool's
// parameter schema (type, required, properties, additionalProperties,
// enum, items: the subset function schemas use).
func ValidToolJSON(req *middleware.Request, resp *middleware.Response) error {
	for _, tc := range resp.Message.ToolCalls {
		var tool *middleware.Tool
		for i := range req.Tools {
			if req.Tools[i].Name == tc.Name {
				tool = &req.Tools[i]
				break
			}
		}
		if tool == nil && len(req.Tools) > 0 {
			return fmt.Errorf("tool call %q: no such tool was offered", tc.Name)
		}
		args := strings.TrimSpace(tc.Arguments)
		if args == "" {
			args = "{}"
		}
		dec := json.NewDecoder(strings.NewReader(args))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("tool call %q: arguments are not valid JSON: %v", tc.Name, err)
		}
		if dec.More() {
			return fmt.Errorf("tool call %q: arguments are not valid JSON: trailing data", tc.Name)
		}
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("tool call %q: arguments are not a JSON object", tc.Name)
		}
		if tool == nil || len(bytes.TrimSpace(tool.Parameters)) == 0 {
			continue
		}
		var schema map[string]any
		if err := json.Unmarshal(tool.Parameters, &schema); err != nil {
			continue // a schema we cannot read constrains nothing here
		}
		if err := validate(schema, v, "arguments"); err != nil {
			return fmt.Errorf("tool call %q: %v", tc.Name, err)
		}
	}
	return nil
}

// validate checks v against the subset of JSON Schema function tools use.
func validate(schema map[string]any, v any, path string) error {
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if sameJSON(e, v) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of the allowed values", path, v)
		}
	}
	if t, ok := schema["type"]; ok {
		if !typeMatches(t, v) {
			return fmt.Errorf("%s: want type %v, got %s", path, t, jsonType(v))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if name, ok := r.(string); ok {
					if _, present := x[name]; !present {
						return fmt.Errorf("%s: missing required property %q", path, name)
					}
				}
			}
		}
		for k, val := range x {
			sub, ok := props[k].(map[string]any)
			if !ok {
				if ap, isBool := schema["additionalProperties"].(bool); isBool && !ap {
					return fmt.Errorf("%s: unexpected property %q", path, k)
				}
				continue
			}
			if err := validate(sub, val, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range x {
				if err := validate(items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func typeMatches(t any, v any) bool {
	switch t := t.(type) {
	case string:
		return typeIs(t, v)
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && typeIs(s, v) {
				return true
			}
		}
		return false
	}
	return true
}

func typeIs(t string, v any) bool {
	switch t {
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return jsonType(v) == t
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func sameJSON(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
