package gateway

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// count is a token count of an answer's usage as OpenAI-compatible
// servers write it: an integer, or a float (12.0 and 1.2e1 are 12, a
// fraction is rounded up: a count is billed up), as the chat adapters
// read it; null is 0. A number beyond the range of int64 is no count:
// it reads as -1, which makes the usage unreadable (a negative count).
// A string holding a number ("1000", as vLLM behind some proxies writes
// counts) is that number; anything else (another string, an object) is an
// error.
type count int64

func (c *count) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		// A count written as a string ("1000", as vLLM behind some
		// proxies writes it): the number it holds.
		var q string
		if err := json.Unmarshal(b, &q); err != nil {
			return err
		}
		s = strings.TrimSpace(q)
		if s == "" || s[0] == '"' {
			return errors.New("a count written as a string holds no number")
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*c = count(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			*c = -1
			return nil
		}
		return err
	}
	if f >= 1<<63 || f < -(1<<63) {
		*c = -1
		return nil
	}
	*c = count(math.Ceil(f))
	return nil
}
