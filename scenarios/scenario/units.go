package scenario

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size is a number of bytes. In scenario files it is written with a unit:
// "512B", "1KiB", "64MiB", "1GiB" (powers of 1024) or "1KB", "10MB", "1GB"
// (powers of 1000); a bare integer is bytes.
type Size int64

// sizeUnits is part of the file format. Longest suffixes first, so "KiB"
// is tried before "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize reads a Size written as described on Size.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	if t == "" {
		return 0, fmt.Errorf("bad size %q: expected a number with a unit, like 512B, 1KiB, 64MiB or 1GB", s)
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("bad size %q: must not be negative", s)
		}
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("bad size %q: too large", s)
		}
		return Size(n * mult), nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("bad size %q: expected a number with a unit, like 512B, 1KiB, 64MiB or 1GB", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("bad size %q: must not be negative", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return Size(v), nil
}

// String writes the size in the largest binary unit that divides it.
func (s Size) String() string {
	switch {
	case s != 0 && s%(1<<30) == 0:
		return strconv.FormatInt(int64(s)>>30, 10) + "GiB"
	case s != 0 && s%(1<<20) == 0:
		return strconv.FormatInt(int64(s)>>20, 10) + "MiB"
	case s != 0 && s%(1<<10) == 0:
		return strconv.FormatInt(int64(s)>>10, 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes the size as String does, so plans read well.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Duration is a time.Duration that reads and writes as Go duration text
// ("1.5s", "250ms") in JSON, so plan.json and result.json stay readable.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is time.Duration's.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	*d = Duration(v)
	return nil
}

// parseDuration reads a duration as the file format wants it: Go duration
// text with a unit ("10s", "1m30s", "250ms"); "0" alone is allowed.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: expected a number with a unit, like 500ms, 10s or 1m30s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	}
	if d > MaxDuration {
		return 0, fmt.Errorf("bad duration %q: more than the limit of %s", s, strings.TrimSuffix(MaxDuration.String(), "0m0s"))
	}
	return d, nil
}
