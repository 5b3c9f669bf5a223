package data

import (
	"fmt"
	"strconv"
)

// parseNPYDict parses the header dictionary of a .npy file, a Python literal such as
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (100, 1, 28, 28), }
//
// It accepts exactly the keys descr, fortran_order and shape (as NumPy does), quoted
// with ' or ", and the Python 2 "L" suffix on shape integers that old NumPy wrote. base
// is the header's byte offset in the file, so errors give file offsets.
func parseNPYDict(s string, base int) (*npyHeader, error) {
	p := &pyParser{s: s, base: base}
	h := &npyHeader{}
	var haveDescr, haveOrder, haveShape bool
	p.space()
	if !p.eat('{') {
		return nil, p.errf("want '{' to open the header dictionary")
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		keyAt := p.pos
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.eat(':') {
			return nil, p.errf(fmt.Sprintf("want ':' after key %q", key))
		}
		p.space()
		switch key {
		case "descr":
			if haveDescr {
				return nil, p.errAt(keyAt, "duplicate key 'descr'")
			}
			haveDescr = true
			if p.peek() == '[' {
				return nil, fmt.Errorf("npy: %w: structured dtype (a list descr) at byte %d", ErrUnsupported, base+p.pos)
			}
			at := p.pos
			if h.descr, err = p.str(); err != nil {
				return nil, err
			}
			if h.dt, err = parseDType(h.descr); err != nil {
				return nil, fmt.Errorf("%w (header byte %d)", err, base+at)
			}
		case "fortran_order":
			if haveOrder {
				return nil, p.errAt(keyAt, "duplicate key 'fortran_order'")
			}
			haveOrder = true
			at := p.pos
			b, err := p.boolean()
			if err != nil {
				return nil, err
			}
			if b {
				return nil, fmt.Errorf("npy: %w: fortran_order True at byte %d (only C order is read; save with np.ascontiguousarray)", ErrUnsupported, base+at)
			}
		case "shape":
			if haveShape {
				return nil, p.errAt(keyAt, "duplicate key 'shape'")
			}
			haveShape = true
			if h.shape, err = p.tuple(); err != nil {
				return nil, err
			}
		default:
			return nil, p.errAt(keyAt, fmt.Sprintf("unexpected key %q", key))
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return nil, p.errf("want ',' or '}' in the header dictionary")
		}
		break
	}
	p.space()
	if p.pos != len(s) {
		return nil, p.errf("unexpected text after the header dictionary")
	}
	switch {
	case !haveDescr:
		return nil, fmt.Errorf("npy: %w: header at byte %d has no 'descr'", ErrHeader, base)
	case !haveOrder:
		return nil, fmt.Errorf("npy: %w: header at byte %d has no 'fortran_order'", ErrHeader, base)
	case !haveShape:
		return nil, fmt.Errorf("npy: %w: header at byte %d has no 'shape'", ErrHeader, base)
	}
	n, err := checkedCount(h.shape)
	if err != nil {
		return nil, fmt.Errorf("%w (header at byte %d)", err, base)
	}
	h.count = n
	return h, nil
}

type pyParser struct {
	s    string
	pos  int
	base int
}

func (p *pyParser) errAt(pos int, msg string) error {
	return fmt.Errorf("npy: %w at byte %d: %s", ErrHeader, p.base+pos, msg)
}

func (p *pyParser) errf(msg string) error { return p.errAt(p.pos, msg) }

func (p *pyParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c && p.pos < len(p.s) {
		p.pos++
		return true
	}
	return false
}

func (p *pyParser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// str reads a quoted string without escapes (none occur in a valid header).
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errf("want a quoted string")
	}
	start := p.pos + 1
	for i := start; i < len(p.s); i++ {
		switch p.s[i] {
		case q:
			p.pos = i + 1
			return p.s[start:i], nil
		case '\\':
			return "", p.errAt(i, "escape sequence in a header string")
		case '\n':
			return "", p.errAt(p.pos, "unterminated string")
		}
	}
	return "", p.errAt(p.pos, "unterminated string")
}

func (p *pyParser) boolean() (bool, error) {
	rest := p.s[p.pos:]
	switch {
	case len(rest) >= 4 && rest[:4] == "True":
		p.pos += 4
		return true, nil
	case len(rest) >= 5 && rest[:5] == "False":
		p.pos += 5
		return false, nil
	}
	return false, p.errf("want True or False")
}

// tuple reads a tuple of non-negative integers: (), (5,), (2, 3), (2, 3,).
func (p *pyParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.errf("want '(' to open the shape tuple")
	}
	shape := []int{}
	comma := false
	for {
		p.space()
		if p.eat(')') {
			if len(shape) == 1 && !comma {
				// "(5)" is the integer 5 in Python, not a tuple; NumPy never writes it.
				return nil, p.errAt(p.pos-1, "shape (n) is not a tuple, want (n,)")
			}
			return shape, nil
		}
		if len(shape) >= 64 {
			return nil, p.errf("shape has more than 64 dimensions")
		}
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == start {
			return nil, p.errf("want a non-negative integer in the shape tuple")
		}
		d, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil || d > MaxElements {
			return nil, fmt.Errorf("npy: %w at byte %d: dimension %s is too large", ErrShape, p.base+start, p.s[start:p.pos])
		}
		p.eat('L')
		shape = append(shape, d)
		p.space()
		if comma = p.eat(','); comma {
			continue
		}
		p.space()
		if p.peek() != ')' {
			return nil, p.errf("want ',' or ')' in the shape tuple")
		}
	}
}
