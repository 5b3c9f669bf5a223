package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors wrapped by the decoders, for errors.Is.
var (
	// ErrMagic means the input does not start with the format's magic bytes.
	ErrMagic = errors.New("bad magic")
	// ErrHeader means the header is present but malformed.
	ErrHeader = errors.New("malformed header")
	// ErrUnsupported means a well-formed feature this package does not read or write
	// (Fortran order, object or structured dtypes, an unknown header version, ...).
	ErrUnsupported = errors.New("unsupported")
	// ErrTruncated means the input ended before the header's promised content.
	ErrTruncated = errors.New("truncated")
	// ErrTrailing means bytes follow the data that the header describes.
	ErrTrailing = errors.New("trailing data")
	// ErrShape means a shape is negative, too large, or disagrees with the data.
	ErrShape = errors.New("bad shape")
	// ErrCorrupt means compressed data failed to decompress (bad deflate data or
	// checksum).
	ErrCorrupt = errors.New("corrupt compressed data")
	// ErrValue means a value cannot be represented (a non-integer label, a value out of
	// the range of the dtype being written, ...).
	ErrValue = errors.New("bad value")
)

// MaxElements is the largest element count a decoder accepts. It bounds what a hostile
// header can make the reader allocate and keeps every index within int32 arithmetic.
const MaxElements = 1 << 31

// maxNPYHeader bounds the header length of a .npy file; real headers are ~100 bytes
// (NumPy itself refuses headers over 10000 bytes by default).
const maxNPYHeader = 1 << 20

// readChunk is how many bytes of array data the streaming readers decode per step, so
// that a truncated file claiming a huge shape fails after reading what is there rather
// than after allocating what the header promised.
const readChunk = 1 << 16

var npyMagic = []byte("\x93NUMPY")

// Array is an n-dimensional array read from or written to a .npy file, in C (row-major)
// order. Every element is held as a float64, which is exact for every supported dtype
// (float32, float64, and integers of magnitude up to 2^53).
type Array struct {
	// Shape is the array's shape; an empty shape is a 0-d array holding one element.
	Shape []int
	// DType is the NumPy type descriptor, e.g. "<f4", "<f8", "<i8", "|u1". It is the
	// file's descriptor after reading, and the descriptor WriteNPY writes ("" = "<f8").
	DType string
	// Data holds the elements in row-major order; len(Data) is the product of Shape.
	Data []float64
}

// Len returns the number of elements.
func (a *Array) Len() int { return len(a.Data) }

// NumSamples returns the length of the leading axis (the sample axis of a data set), or
// 1 for a 0-d array.
func (a *Array) NumSamples() int {
	if len(a.Shape) == 0 {
		return 1
	}
	return a.Shape[0]
}

// SampleSize returns the number of elements per entry of the leading axis: the product
// of Shape[1:] (1 for a 0-d or 1-d array).
func (a *Array) SampleSize() int {
	n := 1
	for i := 1; i < len(a.Shape); i++ {
		n *= a.Shape[i]
	}
	return n
}

// Sample returns entry i of the leading axis as a slice of Data (not a copy), or nil
// when i is out of range.
func (a *Array) Sample(i int) []float64 {
	n, s := a.NumSamples(), a.SampleSize()
	if i < 0 || i >= n || (i+1)*s > len(a.Data) {
		return nil
	}
	return a.Data[i*s : (i+1)*s : (i+1)*s]
}

// Ints returns the elements as ints, or an error naming the first element that is not
// an integer (a fraction, NaN or ±Inf) or lies beyond ±2^53.
func (a *Array) Ints() ([]int, error) {
	out := make([]int, len(a.Data))
	for i, v := range a.Data {
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return nil, fmt.Errorf("npy: %w: element %d is %v, not an integer", ErrValue, i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// Validate checks that the shape is non-negative, its element count equals len(Data),
// and DType is one the writer supports.
func (a *Array) Validate() error {
	n, err := checkedCount(a.Shape)
	if err != nil {
		return err
	}
	if n != len(a.Data) {
		return fmt.Errorf("npy: %w: shape %v holds %d elements but Data has %d", ErrShape, a.Shape, n, len(a.Data))
	}
	_, err = parseDType(a.dtypeOrDefault())
	return err
}

func (a *Array) dtypeOrDefault() string {
	if a.DType == "" {
		return "<f8"
	}
	return a.DType
}

// checkedCount multiplies out a shape, refusing negative dimensions and counts above
// MaxElements (which also rules out integer overflow).
func checkedCount(shape []int) (int, error) {
	n := 1
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("npy: %w: dimension %d is negative (%d)", ErrShape, i, d)
		}
		if d != 0 && n > MaxElements/d {
			return 0, fmt.Errorf("npy: %w: shape %v has more than %d elements", ErrShape, shape, MaxElements)
		}
		n *= d
	}
	if n > MaxElements {
		return 0, fmt.Errorf("npy: %w: shape %v has more than %d elements", ErrShape, shape, MaxElements)
	}
	return n, nil
}

// dtype is a decoded type descriptor.
type dtype struct {
	kind byte // 'f', 'i', 'u', 'b'
	size int  // bytes per element
	big  bool // big-endian
}

// parseDType accepts the numeric descriptors: f4 f8, i1 i2 i4 i8, u1 u2 u4 u8 and b1,
// with byte order '<', '>', '|' or '=' ('=' and '|' mean little-endian, the byte order
// of every platform graftcert builds for).
func parseDType(s string) (dtype, error) {
	var d dtype
	rest := s
	if rest != "" {
		switch rest[0] {
		case '<', '|', '=':
			rest = rest[1:]
		case '>':
			d.big = true
			rest = rest[1:]
		}
	}
	switch rest {
	case "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1":
		d.kind, d.size = rest[0], int(rest[1]-'0')
		return d, nil
	case "O", "O8", "O4":
		return dtype{}, fmt.Errorf("npy: %w: object arrays (dtype %q) hold pickled Python objects, not numbers", ErrUnsupported, s)
	}
	return dtype{}, fmt.Errorf("npy: %w: dtype %q (supported: f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1)", ErrUnsupported, s)
}

func (d dtype) order() binary.ByteOrder {
	if d.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// decode converts len(dst) elements from src; first is the index of dst[0] in the whole
// array, for error messages.
func (d dtype) decode(dst []float64, src []byte, first int) error {
	o := d.order()
	switch {
	case d.kind == 'f' && d.size == 4:
		for i := range dst {
			dst[i] = float64(math.Float32frombits(o.Uint32(src[4*i:])))
		}
	case d.kind == 'f' && d.size == 8:
		for i := range dst {
			dst[i] = math.Float64frombits(o.Uint64(src[8*i:]))
		}
	case d.kind == 'i' && d.size == 1:
		for i := range dst {
			dst[i] = float64(int8(src[i]))
		}
	case d.kind == 'i' && d.size == 2:
		for i := range dst {
			dst[i] = float64(int16(o.Uint16(src[2*i:])))
		}
	case d.kind == 'i' && d.size == 4:
		for i := range dst {
			dst[i] = float64(int32(o.Uint32(src[4*i:])))
		}
	case d.kind == 'i' && d.size == 8:
		for i := range dst {
			v := int64(o.Uint64(src[8*i:]))
			if v > 1<<53 || v < -(1<<53) {
				return fmt.Errorf("npy: %w: int64 element %d (%d) is beyond ±2^53 and has no exact float64", ErrValue, first+i, v)
			}
			dst[i] = float64(v)
		}
	case d.kind == 'u' && d.size == 1:
		for i := range dst {
			dst[i] = float64(src[i])
		}
	case d.kind == 'b':
		// NumPy reads any non-zero byte as True.
		for i := range dst {
			dst[i] = 0
			if src[i] != 0 {
				dst[i] = 1
			}
		}
	case d.kind == 'u' && d.size == 2:
		for i := range dst {
			dst[i] = float64(o.Uint16(src[2*i:]))
		}
	case d.kind == 'u' && d.size == 4:
		for i := range dst {
			dst[i] = float64(o.Uint32(src[4*i:]))
		}
	case d.kind == 'u' && d.size == 8:
		for i := range dst {
			v := o.Uint64(src[8*i:])
			if v > 1<<53 {
				return fmt.Errorf("npy: %w: uint64 element %d (%d) is beyond 2^53 and has no exact float64", ErrValue, first+i, v)
			}
			dst[i] = float64(v)
		}
	default:
		return fmt.Errorf("npy: %w: dtype %c%d", ErrUnsupported, d.kind, d.size)
	}
	return nil
}

// encode is decode's inverse; it refuses values the dtype cannot hold.
func (d dtype) encode(dst []byte, src []float64, first int) error {
	o := d.order()
	if d.kind == 'f' {
		for i, v := range src {
			if d.size == 4 {
				f := float32(v)
				if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
					return fmt.Errorf("npy: %w: element %d (%v) overflows float32", ErrValue, first+i, v)
				}
				o.PutUint32(dst[4*i:], math.Float32bits(f))
			} else {
				o.PutUint64(dst[8*i:], math.Float64bits(v))
			}
		}
		return nil
	}
	var lo, hi float64
	switch {
	case d.kind == 'b':
		lo, hi = 0, 1
	case d.kind == 'u':
		lo, hi = 0, math.Min(math.Ldexp(1, 8*d.size)-1, 1<<53)
	default:
		lo, hi = -math.Ldexp(1, 8*d.size-1), math.Min(math.Ldexp(1, 8*d.size-1)-1, 1<<53)
		lo = math.Max(lo, -(1 << 53))
	}
	for i, v := range src {
		if v != math.Trunc(v) || v < lo || v > hi {
			return fmt.Errorf("npy: %w: element %d (%v) is not an integer in [%v, %v] for dtype %c%d", ErrValue, first+i, v, lo, hi, d.kind, d.size)
		}
		switch d.size {
		case 1:
			dst[i] = byte(int64(v))
		case 2:
			o.PutUint16(dst[2*i:], uint16(int64(v)))
		case 4:
			o.PutUint32(dst[4*i:], uint32(int64(v)))
		case 8:
			o.PutUint64(dst[8*i:], uint64(int64(v)))
		}
	}
	return nil
}

// npyHeader is what a .npy header says.
type npyHeader struct {
	descr string
	dt    dtype
	shape []int
	count int // elements
	data  int // offset of the first data byte
}

// readNPYHeader reads the magic, version, and header dictionary.
func readNPYHeader(r io.Reader) (*npyHeader, error) {
	var pre [8]byte
	if n, err := io.ReadFull(r, pre[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("npy: %w: empty input", ErrTruncated)
		}
		return nil, fmt.Errorf("npy: %w: file is %d bytes, shorter than the 8-byte magic and version", ErrTruncated, n)
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return nil, fmt.Errorf("npy: %w at byte 0: got %q, want \"\\x93NUMPY\"", ErrMagic, pre[:6])
	}
	major, minor := pre[6], pre[7]
	var lenBytes int
	switch major {
	case 1:
		lenBytes = 2
	case 2, 3:
		lenBytes = 4
	default:
		return nil, fmt.Errorf("npy: %w: format version %d.%d at byte 6 (known: 1.0, 2.0, 3.0)", ErrUnsupported, major, minor)
	}
	var lb [4]byte
	if n, err := io.ReadFull(r, lb[:lenBytes]); err != nil {
		return nil, fmt.Errorf("npy: %w: header length at byte 8: got %d of %d bytes", ErrTruncated, n, lenBytes)
	}
	hlen := int(binary.LittleEndian.Uint16(lb[:2]))
	if lenBytes == 4 {
		hlen = int(binary.LittleEndian.Uint32(lb[:]))
	}
	start := 8 + lenBytes
	if hlen > maxNPYHeader {
		return nil, fmt.Errorf("npy: %w: header length %d at byte 8 exceeds %d", ErrHeader, hlen, maxNPYHeader)
	}
	hb := make([]byte, hlen)
	if n, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("npy: %w: header at byte %d: got %d of %d bytes", ErrTruncated, start, n, hlen)
	}
	var text string
	if major == 3 {
		if !utf8.Valid(hb) {
			return nil, fmt.Errorf("npy: %w: version 3 header at byte %d is not valid UTF-8", ErrHeader, start)
		}
		text = string(hb)
	} else {
		// Versions 1 and 2 are latin-1; the dictionary itself is ASCII, so any byte
		// above 0x7f is an error the dictionary parser reports with its offset.
		text = string(hb)
	}
	h, err := parseNPYDict(text, start)
	if err != nil {
		return nil, err
	}
	h.data = start + hlen
	return h, nil
}

// ReadNPY reads a .npy array from r. The whole stream must be one array: bytes after the
// data are an error (ErrTrailing). Data is read in chunks, so a truncated stream whose
// header claims a huge shape fails with ErrTruncated without allocating that shape.
func ReadNPY(r io.Reader) (*Array, error) {
	h, err := readNPYHeader(r)
	if err != nil {
		return nil, err
	}
	total := h.count * h.dt.size
	step := readChunk - readChunk%h.dt.size
	buf := make([]byte, min(step, total))
	out := make([]float64, 0, min(h.count, step/h.dt.size))
	for got := 0; got < total; {
		n := min(step, total-got)
		m, err := io.ReadFull(r, buf[:n])
		if err != nil {
			return nil, fmt.Errorf("npy: %w: data at byte %d: shape %v of %s needs %d bytes, file ends after %d",
				ErrTruncated, h.data, h.shape, h.descr, total, got+m)
		}
		k := len(out)
		out = append(out, make([]float64, n/h.dt.size)...)
		if err := h.dt.decode(out[k:], buf[:n], k); err != nil {
			return nil, err
		}
		got += n
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return nil, fmt.Errorf("npy: %w: bytes follow the %d data bytes at byte %d", ErrTrailing, total, h.data+total)
	}
	return &Array{Shape: h.shape, DType: h.descr, Data: out}, nil
}

// ReadNPYBytes reads a .npy array held in memory. The data length is checked against
// the header before anything is allocated for it.
func ReadNPYBytes(b []byte) (*Array, error) {
	br := bytes.NewReader(b)
	h, err := readNPYHeader(br)
	if err != nil {
		return nil, err
	}
	total := h.count * h.dt.size
	rest := b[h.data:]
	if len(rest) < total {
		return nil, fmt.Errorf("npy: %w: data at byte %d: shape %v of %s needs %d bytes, file has %d",
			ErrTruncated, h.data, h.shape, h.descr, total, len(rest))
	}
	if len(rest) > total {
		return nil, fmt.Errorf("npy: %w: %d bytes follow the %d data bytes at byte %d", ErrTrailing, len(rest)-total, total, h.data+total)
	}
	out := make([]float64, h.count)
	if err := h.dt.decode(out, rest, 0); err != nil {
		return nil, err
	}
	return &Array{Shape: h.shape, DType: h.descr, Data: out}, nil
}

// ReadNPYFile reads the .npy file at path; errors name the path.
func ReadNPYFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := ReadNPY(bufio.NewReaderSize(f, readChunk))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// WriteNPY writes a as a .npy file in NumPy's own layout: version 1.0 (2.0 when the
// header exceeds 65535 bytes), header padded with spaces to a multiple of 64 bytes, C
// order, dtype a.DType ("" means "<f8"). A value the dtype cannot hold exactly as an
// integer, or a finite value that overflows float32, is an error (ErrValue); float32
// output otherwise rounds to nearest.
func WriteNPY(w io.Writer, a *Array) error {
	if err := a.Validate(); err != nil {
		return err
	}
	descr := a.dtypeOrDefault()
	dt, _ := parseDType(descr)
	var sb strings.Builder
	sb.WriteString("{'descr': '")
	sb.WriteString(descr)
	sb.WriteString("', 'fortran_order': False, 'shape': (")
	for i, d := range a.Shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(a.Shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteString("), }")
	header := sb.String()
	// NumPy's format._wrap_header arithmetic, so that files round-trip byte for byte:
	// magic, version, length field and header end on a 64-byte boundary (padding: 1 to 64
	// spaces, then '\n'), which keeps the data aligned.
	prefix := 10
	major := byte(1)
	hl := len(header) + 1
	pad := 64 - (prefix+hl)%64
	if hl+pad > math.MaxUint16 {
		prefix, major = 12, 2
		pad = 64 - (prefix+hl)%64
	}
	bw := bufio.NewWriterSize(w, readChunk)
	bw.Write(npyMagic)
	bw.Write([]byte{major, 0})
	if major == 1 {
		binary.Write(bw, binary.LittleEndian, uint16(hl+pad))
	} else {
		binary.Write(bw, binary.LittleEndian, uint32(hl+pad))
	}
	bw.WriteString(header)
	bw.WriteString(strings.Repeat(" ", pad))
	bw.WriteByte('\n')
	per := readChunk / dt.size
	buf := make([]byte, per*dt.size)
	for i := 0; i < len(a.Data); i += per {
		src := a.Data[i:min(i+per, len(a.Data))]
		if err := dt.encode(buf, src, i); err != nil {
			return err
		}
		if _, err := bw.Write(buf[:len(src)*dt.size]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteNPYFile writes a to path (created or truncated); errors name the path.
func WriteNPYFile(path string, a *Array) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteNPY(f, a); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
