// Package strid is the identity of Go strings, for the memos that find
// what they computed for a string by its data pointer and length instead
// of its bytes (the estimator's per-message counts in package tokens, the
// cache key's per-message encodings in llmwrap/cache).
//
// Strings are immutable: while a memo entry holds a string, the memory it
// points to cannot be freed and reused, so another string with the same
// data pointer and length has the same bytes. A memo must hold the strings
// of its entries and compare them with [Same] before using an entry; the
// hash ([Mix]) only picks a slot. (Strings built with unsafe over mutable
// memory break the language's rules and this package's.)
package strid

import (
	"math/bits"
	"unsafe"
)

// Ptr returns the address of s's bytes, 0 for the empty string.
func Ptr(s string) uint64 {
	if len(s) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// Mix mixes the identity of s (data pointer and length) into the hash h.
func Mix(h uint64, s string) uint64 {
	h = bits.RotateLeft64((h^Ptr(s))*0x9E3779B97F4A7C15, 29)
	h = (h ^ uint64(len(s))) * 0xBF58476D1CE4E5B9
	return h ^ h>>31
}

// Same reports whether a and b are the same string value: equal lengths
// and, when not empty, the same data pointer.
func Same(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}
