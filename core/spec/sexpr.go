package spec

import "fmt"

// maxDepth bounds the nesting of s-expressions: real files nest 4 deep, and the
// evaluator recurses once per level.
const maxDepth = 256

// sexp is one SMT-LIB s-expression: an atom (a symbol or a numeral) or a list.
type sexp struct {
	atom   string
	list   []*sexp
	isList bool
	line   int // where it starts
}

// head returns the operator symbol of a list whose first element is an atom.
func (s *sexp) head() (string, bool) {
	if !s.isList || len(s.list) == 0 || s.list[0].isList {
		return "", false
	}
	return s.list[0].atom, true
}

func (s *sexp) String() string {
	if !s.isList {
		return s.atom
	}
	out := "("
	for i, e := range s.list {
		if i > 0 {
			out += " "
		}
		if len(out) > 60 {
			return out + "...)"
		}
		out += e.String()
	}
	return out + ")"
}

// parseSexps splits src into its top-level s-expressions. ';' starts a comment that runs
// to the end of the line; whitespace is space, tab, CR, LF, FF and VT.
func parseSexps(src []byte) ([]*sexp, error) {
	var top []*sexp
	var stack []*sexp
	line := 1
	add := func(e *sexp) {
		if len(stack) == 0 {
			top = append(top, e)
		} else {
			p := stack[len(stack)-1]
			p.list = append(p.list, e)
		}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch c {
		case '\n':
			line++
			i++
		case ' ', '\t', '\r', '\f', '\v':
			i++
		case ';':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case '(':
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("vnnlib: line %d: %w: nesting deeper than %d", line, ErrSyntax, maxDepth)
			}
			e := &sexp{isList: true, line: line}
			add(e)
			stack = append(stack, e)
			i++
		case ')':
			if len(stack) == 0 {
				return nil, fmt.Errorf("vnnlib: line %d: %w: unbalanced ')'", line, ErrSyntax)
			}
			stack = stack[:len(stack)-1]
			i++
		case '"', '|':
			return nil, fmt.Errorf("vnnlib: line %d: %w: quoted symbols and strings (%q) are not supported", line, ErrSyntax, c)
		default:
			j := i
			for j < len(src) && !isDelim(src[j]) {
				j++
			}
			add(&sexp{atom: string(src[i:j]), line: line})
			i = j
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("vnnlib: line %d: %w: '(' opened here is never closed (unbalanced parentheses or truncated file)", stack[0].line, ErrSyntax)
	}
	return top, nil
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', '\v', '(', ')', ';', '"', '|':
		return true
	}
	return false
}
