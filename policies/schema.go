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
// number or a string ("0.15", "$2.50"), durations a string with a unit
// ("30s", "1d") or 0 (a bare number is an error, as in the loader), byte sizes
// an integer or a string ("64MiB"), counts are non-negative, fractions and
// percentiles carry the loader's bounds, and enumerated fields (on_exceed,
// period, store kinds, stages, ...) list the values the loader accepts. The output is
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
	for path, bounds := range schemaBounds {
		node := schemaAt(root, path)
		if node == nil {
			return nil, fmt.Errorf("tokenwise/policies: schema bounds for unknown field %s", path)
		}
		for k, v := range bounds {
			node[k] = v
		}
	}
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
	reflect.TypeFor[UnknownTeams]():    {string(UnknownTeamsWarn), string(UnknownTeamsError)},
	reflect.TypeFor[ErrorClass](): {string(ClassRateLimited), string(ClassUnavailable), string(ClassTimeout), string(ClassNetwork),
		string(ClassContextWindow), string(ClassBudget), string(ClassContentFilter), string(ClassAuth), string(ClassBadRequest)},
}

// durationPattern is what ParseDuration accepts, non-negative: 0, or one
// or more number+unit segments (Go's units and d for days). A number
// without a unit is an error in the loader and here.
const durationPattern = `^\s*\+?(0|-0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d))+)\s*$`

// byteSizePattern is what ParseByteSize accepts: a number, optionally with
// a unit.
const byteSizePattern = `^\s*\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*([kKmMgGtT]([iI]?[bB]?)|[bB])?\s*$`

// schemaBounds are the loader's checks that the types alone do not carry:
// fractions, percentiles and the store kinds each field accepts. Keys are
// paths in the schema ("a.b" for properties, "a[]" for array items, "a.*"
// for map values).
var schemaBounds = map[string]map[string]any{
	"budget.warn_at[]":                           {"exclusiveMinimum": 0, "maximum": 1},
	"budget.default_service_tier":                {"pattern": "^[a-z_]{1,32}$"},
	"budget.store.local_fraction":                {"minimum": 0, "maximum": 1},
	"budget.store.kind":                          {"enum": []string{string(StoreMemory), string(StoreRedis)}},
	"cache.store":                                {"enum": []string{string(StoreMemory), string(StoreRedis)}},
	"routing.rules[].when.budget_below.fraction": {"exclusiveMinimum": 0, "maximum": 1},
	"fallback.breaker.failure_ratio":             {"minimum": 0, "maximum": 1},
	"fallback.hedge.percentile":                  {"minimum": 0, "exclusiveMaximum": 100},
	"context.window_fraction":                    {"minimum": 0, "maximum": 1},
	"timeouts.models[]":                          {"required": []string{"match"}, "anyOf": setsALimit("call", "total", "first_token", "idle")},
	"timeouts.models[].match":                    {"minItems": 1},
	"timeouts.models[].match[]":                  {"minLength": 1, "pattern": matchPattern},
}

// matchPattern is a name or path.Match pattern that is not blank: a
// character class ([a-z], [^0-9]) is closed and holds at least one
// character or range, an escape ('\\') escapes something.
const matchPattern = `^\s*(` + matchToken + `)(\s|` + matchToken + `)*$`

// matchToken is one non-blank piece of a path.Match pattern.
const matchToken = `[^\[\\\s]|\\[\s\S]|\[(\^([^\]\\-]|\\[\s\S])|([^\]\\^-]|\\[\s\S]))(-([^\]\\-]|\\[\s\S]))?(([^\]\\-]|\\[\s\S])(-([^\]\\-]|\\[\s\S]))?)*\]`

// setsALimit is the schema of an object one of whose duration fields is
// set and not zero (a zero duration is 0 or a string of no digit but 0).
func setsALimit(fields ...string) []any {
	alts := make([]any, len(fields))
	for i, f := range fields {
		alts[i] = map[string]any{"type": "object", "required": []string{f},
			"properties": map[string]any{f: map[string]any{"type": "string", "pattern": "[1-9]"}}}
	}
	return alts
}

// schemaAt returns the schema node at path, or nil.
func schemaAt(root map[string]any, path string) map[string]any {
	node := root
	for _, part := range strings.Split(path, ".") {
		items := strings.HasSuffix(part, "[]")
		part = strings.TrimSuffix(part, "[]")
		var next map[string]any
		if part == "*" {
			next, _ = node["additionalProperties"].(map[string]any)
		} else if props, ok := node["properties"].(map[string]any); ok {
			next, _ = props[part].(map[string]any)
		}
		if next == nil {
			return nil
		}
		if items {
			if next, _ = next["items"].(map[string]any); next == nil {
				return nil
			}
		}
		node = next
	}
	return node
}

func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[USD]():
		// At most six decimals, as ParseUSD: more are refused unless they
		// are trailing zeros.
		return map[string]any{"description": "US dollars: a number (1.50) or a string (\"0.15\", \"$2.50\"), at most six decimals",
			"anyOf": []any{map[string]any{"type": "number", "minimum": 0, "multipleOf": 0.000001},
				map[string]any{"type": "string", "pattern": `^\s*\+?\$?([0-9]+(\.[0-9]{0,6}0*)?|\.[0-9]{1,6}0*)\s*$`}}}
	case reflect.TypeFor[Duration]():
		return map[string]any{"description": "a duration in Go syntax with days (\"30s\", \"5m\", \"1h30m\", \"1d\"), or 0",
			"anyOf": []any{map[string]any{"type": "string", "pattern": durationPattern}, map[string]any{"type": "integer", "const": 0}}}
	case reflect.TypeFor[ByteSize]():
		return map[string]any{"description": "a size in bytes: an integer (8192) or a string with a unit (\"64MiB\", \"2KB\")",
			"anyOf": []any{map[string]any{"type": "integer", "minimum": 0}, map[string]any{"type": "string", "pattern": byteSizePattern}}}
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
		return map[string]any{"type": "integer", "minimum": 0} // every count and limit: the loader rejects negatives
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
			if name, ok := yamlName(f); ok {
				props[name] = schemaOf(f.Type)
			}
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic("tokenwise/policies: no JSON Schema for " + t.String())
}
