// Package tokens is the token counter the layers share: it estimates the
// input tokens of a chat request before it is sent, so that budgets, routers
// and context compaction can act on it.
//
// # Exact counts for OpenAI encodings
//
// For models whose encoding is known ([Estimator.Encoding]: gpt-4o*,
// chatgpt-4o*, gpt-4.1*, gpt-5*, o1*, o3*, o4* use o200k_base; gpt-4* and
// gpt-3.5* use cl100k_base) the text is tokenised offline as OpenAI's
// tiktoken does it: the ranks of OpenAI's own vocabulary files (as
// github.com/pkoukk/tiktoken-go-loader embeds them, read straight into a
// table without pointers, so the garbage collector never scans it: a Go map
// of o200k_base's vocabulary is 7 MB of pointers every cycle of the process
// would scan) and tiktoken's byte-pair merges, with this package's own pre-tokenizer for
// the two encodings' split patterns in place of tiktoken-go's regexp2 (7-20
// times faster, no allocation per piece; words of ASCII letters take a fast
// path), and the ranks in an open-addressed table with each token's first
// 8 bytes inline (a lookup reads one slot and compares the bytes in full);
// the counts of recent pieces of 2 to 16 bytes are kept in a small
// direct-mapped cache (their bytes compared in full), so that a word seen
// before costs no lookup in the 8 MB table.
// The split is checked piece for
// piece against the patterns run by an interpreting backtracking engine,
// and the merges id for id against github.com/tiktoken-go/tokenizer, on a
// generated corpus and by a fuzz target; the vocabulary id for id against
// tiktoken-go's. Where tiktoken-go's generated regexp departs from the
// pattern, this package follows the pattern, as tiktoken does: DEL (U+007F)
// is a character like any other (tiktoken-go drops it), and a whitespace
// run with several line breaks is one piece up to its last break (tiktoken-go
// splits it after the first run of \r and \n). The chat framing follows the
// OpenAI cookbook ("How to count tokens with tiktoken"):
//
//   - every message costs 3 tokens plus the tokens of its role and content;
//     a name costs its tokens plus 1 (gpt-3.5-turbo-0301: 4 per message,
//     and a name replaces the role, -1);
//   - the reply is primed with 3 tokens;
//   - tool definitions cost, per function, 7 (o200k_base) or 10
//     (cl100k_base) tokens plus the tokens of "name:description" (a trailing
//     period dropped); when it has properties, 3 more plus, per property, 3
//     and the tokens of "key:type:description", and for an enum -3 plus 3
//     and the item's tokens per item; 12 tokens close the list.
//
// Parts the cookbook does not cover are counted on the safe side: tool calls
// of assistant messages cost the tokens of their name and arguments plus 3,
// and so does a legacy function call (OpenAI's "function_call"); a refusal
// of the history costs its text's tokens;
// a tool message's call id is counted like a value; a property with nested
// schema keys adds the tokens of its JSON text; an image part costs 85
// tokens at detail "low" and 1445 otherwise (the largest high-detail tile
// count of a 2048-pixel image); binary parts cost one token per 2 bytes.
//
// # Conservative estimate for other models
//
// For a model with no known encoding (Claude, Gemini, Llama, ...) text costs
// 3/2 of its cl100k_base count, rounded up (those tokenisers produce up to
// about a third more tokens than cl100k_base on English, code and JSON; a
// byte-length rule was rejected because digit- and punctuation-heavy text
// such as JSON runs below 2 bytes per token), a message costs 5 tokens of
// framing plus its role, a tool definition the tokens of its name,
// description and JSON schema plus 10, and the reply 5. The estimate
// is meant to be an upper bound for budgeting, not an exact count; the
// provider's reported usage always wins when the call is settled.
//
// # Incremental work
//
// Per-message counts are memoised in a bounded lock-free table keyed by a hash
// of the encoding and the message, and so are tool definitions. In front of
// it, a bounded lock-free table (4-way set-associative, one cache line a
// bucket) finds a message by the identity of its
// strings (data pointers and lengths, checked string by string; the entry
// keeps its strings alive, so an address cannot be reused for other bytes
// while it exists): an agent conversation that re-sends its old messages
// and adds one costs a few nanoseconds per old message, whatever its size,
// and tokenising only the new one (a message enters the identity table
// when it is sent the second time, found by its content hash then). Messages with binary parts, and old
// messages rebuilt as new strings, are found by the content hash instead.
// In front of both, a conversation table keeps, per conversation (found by
// the identity of its first two messages), the strings of its messages in
// order with the count of every prefix: a re-sent conversation is compared
// with one entry read in order instead of one table lookup per message
// (two cache misses each when many conversations are in flight); a turn
// adds one entry sharing the previous one's prefix.
// (The OpenAI transport decodes a resent message to the same strings as
// the previous call, so its old messages take the identity path.) [ForCall] memoises the whole count once per
// call (and per model and request), so that the router, the compaction layer
// and the budget share one computation.
//
// # A bound before the count
//
// A layer that only compares the estimate with a limit (the budget's
// input cap per request and the context window, the compaction layer's
// ceiling) asks [BoundForCall] first: [Estimator.Bound] is the count of the
// messages the conversation table knows plus every other message's text
// at one token a byte (these encodings' tokens are at least a byte each;
// three a byte for a string that is not valid UTF-8), with framing,
// images and tools as Request counts them; a conversation no layer counts
// keeps the bound of its messages but the last in the conversation table
// from its second sight on, so that its next call reads only its new
// messages' bytes (the same bound). When the bound is within the
// limit, so is the count, and no text is tokenised: a request far below
// its cap costs a pass over its new bytes. Otherwise the layer takes the
// count ([ForCall]), memoised for the call. The decision is the count's
// either way.
package tokens
