package policies

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ByteSize is a number of bytes. Policy files write it as an integer (8192)
// or a number with a unit: B, KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB
// (powers of 1024), case-insensitive, optionally with a space and decimals
// that resolve to whole bytes ("1.5KiB" = 1536). The zero value means "not
// set"; each field documents what that implies.
type ByteSize int64

// Byte size units.
const (
	Byte ByteSize = 1
	KB   ByteSize = 1000
	MB   ByteSize = 1000 * KB
	GB   ByteSize = 1000 * MB
	TB   ByteSize = 1000 * GB
	KiB  ByteSize = 1024
	MiB  ByteSize = 1024 * KiB
	GiB  ByteSize = 1024 * MiB
	TiB  ByteSize = 1024 * GiB
)

var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"tib", TiB}, {"gib", GiB}, {"mib", MiB}, {"kib", KiB},
	{"tb", TB}, {"gb", GB}, {"mb", MB}, {"kb", KB},
	{"ti", TiB}, {"gi", GiB}, {"mi", MiB}, {"ki", KiB},
	{"t", TB}, {"g", GB}, {"m", MB}, {"k", KB},
	{"b", Byte},
}

// Int returns the size in bytes.
func (b ByteSize) Int() int64 { return int64(b) }

// String renders the size with the largest binary unit that divides it
// exactly ("64MiB", "8KiB"), else a decimal unit ("2MB"), else bytes ("100B").
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB}} {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// ParseByteSize parses "8192", "64MiB", "2MB", "1.5 KiB", "100b".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	mult := Byte
	if unit != "" {
		found := false
		for _, u := range byteUnits {
			if u.name == unit {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB, GiB)", clip(s), clip(t[len(num):]))
		}
	}
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimLeft(num, "+-")
	if num == "" || !(allDigits(num) || isDecimal(num)) {
		return 0, fmt.Errorf("invalid size %q: want e.g. 8192, \"64MiB\" or \"2MB\"", clip(s))
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q", clip(s))
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", clip(s))
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid size %q: too large", clip(s))
	}
	v := ByteSize(n.Int64())
	if neg {
		v = -v
	}
	return v, nil
}

// MarshalText writes the size in its String form.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses the size with ParseByteSize.
func (b *ByteSize) UnmarshalText(p []byte) error {
	v, err := ParseByteSize(string(p))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalJSON writes the size as a JSON number of bytes.
func (b ByteSize) MarshalJSON() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }

// UnmarshalJSON reads a JSON number of bytes or a string such as "64MiB".
func (b *ByteSize) UnmarshalJSON(p []byte) error {
	s, ok, err := jsonScalar(p, "size")
	if !ok {
		return err
	}
	return b.UnmarshalText([]byte(s))
}
