package scenario

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Op is a comparison operator of a Condition.
type Op string

// Operators, part of the file format.
const (
	Eq Op = "=="
	Ne Op = "!="
	Lt Op = "<"
	Le Op = "<="
	Gt Op = ">"
	Ge Op = ">="
)

// Condition is a parsed expectation such as "<= 50": an operator and a
// number. A bare number means ==.
type Condition struct {
	Op    Op
	Value float64
}

// ParseCondition reads "0", "== 0", ">0", "<= 50", "< 9.5", "!= 0".
func ParseCondition(s string) (Condition, error) {
	t := strings.TrimSpace(s)
	op := Eq
	for _, o := range []Op{Le, Ge, Eq, Ne, Lt, Gt} { // two-character ops first
		if strings.HasPrefix(t, string(o)) {
			op, t = o, strings.TrimSpace(t[len(o):])
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Condition{}, fmt.Errorf("bad condition %q: expected an operator (==, !=, <, <=, >, >=) and a number, like \">0\" or \"<= 50\"", s)
	}
	return Condition{Op: op, Value: v}, nil
}

// Eval reports whether value satisfies the condition.
func (c Condition) Eval(value float64) bool {
	switch c.Op {
	case Eq:
		return value == c.Value
	case Ne:
		return value != c.Value
	case Lt:
		return value < c.Value
	case Le:
		return value <= c.Value
	case Gt:
		return value > c.Value
	case Ge:
		return value >= c.Value
	}
	return false
}

// String writes the condition in canonical form, "<= 50".
func (c Condition) String() string {
	return string(c.Op) + " " + strconv.FormatFloat(c.Value, 'g', -1, 64)
}

// MarshalText writes String.
func (c Condition) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads what ParseCondition reads.
func (c *Condition) UnmarshalText(b []byte) error {
	v, err := ParseCondition(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
