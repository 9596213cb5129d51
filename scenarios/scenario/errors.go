package scenario

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a scenario file, 1-based. The zero Pos means "no
// particular place" (an error about the file as a whole).
type Pos struct {
	Line int `json:"line,omitempty"`
	Col  int `json:"col,omitempty"`
}

// Error is one problem in a scenario file: where it is and what was
// expected there.
type Error struct {
	File string
	Pos  Pos
	Msg  string
}

// Error formats the problem as file:line:col: message, the form editors
// and CI log viewers link to.
func (e *Error) Error() string {
	switch {
	case e.Pos.Line > 0 && e.Pos.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
	case e.Pos.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Pos.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// ErrorList is every problem found in one file, in file order. Parse and
// Load return it (as error) so a user fixes all problems in one go; use
// errors.As to get at the individual errors.
type ErrorList []*Error

// Error joins the errors one a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sort orders the list by position, keeping the order of errors at the
// same place, and drops exact repeats.
func (l ErrorList) sort() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Pos.Line != l[j].Pos.Line {
			return l[i].Pos.Line < l[j].Pos.Line
		}
		return l[i].Pos.Col < l[j].Pos.Col
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && *e == *l[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}
