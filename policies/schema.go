package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// SchemaID is the $id of the policy JSON Schema.
const SchemaID = "https://github.com/tokenwise/tokenwise/policies/schema.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of the policy file
// format, generated from the Policy struct by reflection over its yaml tags:
// every section is an object that allows only its own keys; USD amounts are a
// number or a string ("0.15", "$2.50"), durations a string ("30s", "1d") or 0,
// byte sizes an integer or a string ("64MiB"), and enumerated fields (on_exceed,
// period, store kinds, stages, ...) list their allowed values. The output is
// deterministic (indented, keys sorted, newline-terminated); policies/schema.json
// in the repository is this output, kept in sync by a test. Regenerate it with
//
//	go run ./cmd/tokenwise policy schema > policies/schema.json
func JSONSchema() ([]byte, error) {
	root := schemaOf(reflect.TypeFor[Policy]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "tokenwise policy"
	root["description"] = fmt.Sprintf("A tokenwise policy file, schema version %d.", Version)
	root["required"] = []string{"version"}
	props := root["properties"].(map[string]any)
	props["version"] = map[string]any{"type": "integer", "const": Version}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // maps are written with sorted keys
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// schemaEnums lists the values of the string enums, from their constants.
var schemaEnums = map[reflect.Type][]string{
	reflect.TypeFor[OnExceed]():        {string(OnExceedReject), string(OnExceedDowngrade), string(OnExceedWarn)},
	reflect.TypeFor[Period]():          {string(PeriodDaily), string(PeriodMonthly), string(PeriodRolling)},
	reflect.TypeFor[StoreKind]():       {string(StoreMemory), string(StoreRedis), string(StoreDir)},
	reflect.TypeFor[OnUnavailable]():   {string(UnavailableFailClosed), string(UnavailableLocal)},
	reflect.TypeFor[OnLimit]():         {string(OnLimitWait), string(OnLimitReject), string(OnLimitFallback)},
	reflect.TypeFor[CacheScope]():      {string(CacheScopeTeam), string(CacheScopeGlobal)},
	reflect.TypeFor[Stage]():           {string(StageToolSelection), string(StageResultAnalysis), string(StageFinalAnswer)},
	reflect.TypeFor[KeywordScope]():    {string(KeywordsInLastUser), string(KeywordsInConversation)},
	reflect.TypeFor[BudgetScope]():     {string(BudgetScopeRun), string(BudgetScopeTeam)},
	reflect.TypeFor[CascadeCheck]():    {string(CheckValidToolJSON), string(CheckNonEmpty), string(CheckFinishReason)},
	reflect.TypeFor[ToolErrorMode]():   {string(ToolErrorObserve), string(ToolErrorFail)},
	reflect.TypeFor[ContextStrategy](): {string(StrategyOffload), string(StrategyDrop), string(StrategySummarise)},
	reflect.TypeFor[LogLevel]():        {string(LogDebug), string(LogInfo), string(LogWarn), string(LogError)},
	reflect.TypeFor[ErrorClass](): {string(ClassRateLimited), string(ClassUnavailable), string(ClassTimeout), string(ClassNetwork),
		string(ClassContextWindow), string(ClassBudget), string(ClassContentFilter), string(ClassAuth), string(ClassBadRequest)},
}

func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[USD]():
		return map[string]any{"description": "US dollars: a number (1.50) or a string (\"0.15\", \"$2.50\"), at most six decimals",
			"anyOf": []any{map[string]any{"type": "number", "minimum": 0}, map[string]any{"type": "string", "pattern": `^\s*\+?\$?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$`}}}
	case reflect.TypeFor[Duration]():
		return map[string]any{"description": "a duration in Go syntax with days (\"30s\", \"5m\", \"1h30m\", \"1d\"), or 0",
			"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer", "const": 0}}}
	case reflect.TypeFor[ByteSize]():
		return map[string]any{"description": "a size in bytes: an integer (8192) or a string with a unit (\"64MiB\", \"2KB\")",
			"anyOf": []any{map[string]any{"type": "integer", "minimum": 0}, map[string]any{"type": "string"}}}
	}
	if vals, ok := schemaEnums[t]; ok {
		return map[string]any{"type": "string", "enum": vals}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic("policies: no JSON Schema for " + t.String())
}
