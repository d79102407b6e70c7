package middleware

// neutralFields are the request fields known not to change the answer, by
// their OpenAI wire names. Everything else a request carries is part of a
// response cache's key.
var neutralFields = [...]string{
	"metadata",          // caller's tags (but with store: true, see NeutralFields)
	"prompt_cache_key",  // routing hint for the provider's prompt cache
	"safety_identifier", // end-user id for abuse monitoring
	"service_tier",      // latency / price class, same model and answer
	"stream",            // how the answer is delivered
	"stream_options",    // include_usage, include_obfuscation: delivery details
	"user",              // end-user id for abuse monitoring
}

// NeutralFields returns the request fields known not to change the answer
// (OpenAI wire names, sorted): metadata, prompt_cache_key,
// safety_identifier, service_tier, stream, stream_options, user.
// Response caches key on everything else, present or future, known or not.
// store is not neutral: a hit's id must be that of a completion the
// provider kept when the caller asked for one (it may retrieve or evaluate
// it by that id), so the answer of a request without store: true never
// answers one with it; and with store: true metadata is not neutral
// either: the provider keeps the completion with it, and the caller lists,
// evaluates and distils its stored completions by it, so the OpenAI
// transport keys such a request on its metadata.
func NeutralFields() []string { return append([]string(nil), neutralFields[:]...) }

// NeutralField reports whether the top-level request field name is one of
// NeutralFields.
func NeutralField(name string) bool {
	switch name {
	case "metadata", "prompt_cache_key", "safety_identifier", "service_tier", "stream", "stream_options", "user":
		return true
	}
	return false
}

// NeutralMember reports whether the top-level member name of a request is
// neutral to its answer: NeutralField, but for metadata when the request
// asks the provider to keep the completion (stored: its store member is
// true), which the provider keeps with it (see NeutralFields).
func NeutralMember(name string, stored bool) bool {
	return NeutralField(name) && !(stored && name == "metadata")
}

// NativeKeyer is implemented by a Request's Native when the request was
// decoded from a richer form than the core models (the OpenAI adapter's
// wire JSON): AppendCacheKey appends to dst an encoding of every part of
// the native request except the NeutralFields, so that a response cache
// keys on all of it, including fields the core does not model (unknown
// and vendor fields, every field of every message and tool). Requests
// that are equal in their native form and their core fields get the same
// answer. whole reports that req's core fields are still those the native
// request decoded to, so that the encoding stands for the whole request
// and a cache may leave the core fields out of its key.
type NativeKeyer interface {
	AppendCacheKey(dst []byte, req *Request) (out []byte, whole bool)
}

// NativePartitioner is implemented by a Request's Native when something
// outside the request's body decides its answer: the OpenAI transport's
// request names the endpoint and the account it is sent to (its URL, its
// organization and project, a hash of its credential). CachePartition
// returns a text of those (never a credential itself); a response cache
// keys on it, so that the same body sent to another deployment, server or
// account never shares an answer. "": none.
type NativePartitioner interface {
	CachePartition() string
}

// NativeFinisher is implemented by a Response's Native that knows every
// choice of the answer (n > 1): AllFinished reports whether each finished
// normally (stop, tool calls). Response.FinishReason is the first
// choice's; a response cache keeps an answer only when every choice is
// complete.
type NativeFinisher interface {
	AllFinished() bool
}

// NativeExpirer is implemented by a Response's Native whose answer holds
// something the provider keeps for a while only: an audio answer's id,
// which a next turn refers to until the answer's audio.expires_at.
// ExpiresAt returns that time, in Unix seconds (the earliest, for several
// choices), or ok false when there is none. A response cache keeps such
// an answer no longer than that: a hit after it would name what the
// provider no longer has.
type NativeExpirer interface {
	ExpiresAt() (unix int64, ok bool)
}

// NativeMarshaler is implemented by a Response's Native that can be kept
// as bytes by a store (a response cache) and given back to its adapter
// later: MarshalNative returns the format (a name the adapter recognises,
// with a version) and the bytes (immutable; a store keeps them as they
// are), or ok false when there is nothing worth keeping. This is how a
// cached answer keeps what the core does not model (every choice,
// logprobs, refusal, audio, annotations, ...).
type NativeMarshaler interface {
	MarshalNative() (format string, data []byte, ok bool)
}

// StoredNative is the Native of a response served from a store: what its
// original Native's MarshalNative returned. Adapters that recognise Format
// render the answer from Data. It is immutable.
type StoredNative struct {
	Format string
	Data   []byte
}
