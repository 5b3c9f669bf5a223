package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte) and the
// number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// IDXImages is an IDX image file: N grayscale images of Rows×Cols bytes, row-major.
type IDXImages struct {
	N, Rows, Cols int
	// Pixels holds N*Rows*Cols bytes, image after image.
	Pixels []byte
}

// Image returns image i's Rows*Cols pixels (a slice of Pixels, not a copy), or nil when
// i is out of range.
func (m *IDXImages) Image(i int) []byte {
	s := m.Rows * m.Cols
	if i < 0 || i >= m.N {
		return nil
	}
	return m.Pixels[i*s : (i+1)*s : (i+1)*s]
}

// Float64 returns every pixel scaled to [0,1] (byte/255), N×Rows×Cols row-major: the
// input convention of every MNIST model graftcert ships.
func (m *IDXImages) Float64() []float64 {
	out := make([]float64, len(m.Pixels))
	for i, p := range m.Pixels {
		out[i] = float64(p) / 255
	}
	return out
}

// ReadIDXImages reads an IDX image file (magic 0x00000803: unsigned bytes, 3
// dimensions), raw or gzip-compressed (detected from the gzip magic). Byte offsets in
// errors count in the decompressed stream.
func ReadIDXImages(r io.Reader) (*IDXImages, error) {
	dims, body, err := readIDX(r, idxImagesMagic, 3)
	if err != nil {
		return nil, err
	}
	return &IDXImages{N: dims[0], Rows: dims[1], Cols: dims[2], Pixels: body}, nil
}

// ReadIDXLabels reads an IDX label file (magic 0x00000801: unsigned bytes, 1
// dimension), raw or gzip-compressed.
func ReadIDXLabels(r io.Reader) ([]int, error) {
	_, body, err := readIDX(r, idxLabelsMagic, 1)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(body))
	for i, b := range body {
		out[i] = int(b)
	}
	return out, nil
}

// readIDX checks the magic, reads ndim big-endian uint32 dimensions and then exactly
// their product of bytes; bytes after that are an error.
func readIDX(r io.Reader, magic uint32, ndim int) ([]int, []byte, error) {
	br := bufio.NewReaderSize(r, readChunk)
	var src io.Reader = br
	what := "idx"
	if p, _ := br.Peek(2); len(p) == 2 && p[0] == 0x1f && p[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			_, kind := readFailure(err)
			return nil, nil, fmt.Errorf("idx: %w: gzip header: %v", kind, err)
		}
		defer zr.Close()
		src = zr
		what = "idx (gzip, offsets in decompressed bytes)"
	}
	head := make([]byte, 4+4*ndim)
	if n, err := io.ReadFull(src, head[:4]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, nil, fmt.Errorf("%s: %w: empty input", what, ErrTruncated)
		}
		why, kind := readFailure(err)
		return nil, nil, fmt.Errorf("%s: %w: magic needs 4 bytes, got %d%s", what, kind, n, why)
	}
	if got := binary.BigEndian.Uint32(head); got != magic {
		return nil, nil, fmt.Errorf("%s: %w at byte 0: got 0x%08x, want 0x%08x", what, ErrMagic, got, magic)
	}
	if n, err := io.ReadFull(src, head[4:]); err != nil {
		why, kind := readFailure(err)
		return nil, nil, fmt.Errorf("%s: %w: header needs %d bytes, got %d%s", what, kind, len(head), 4+n, why)
	}
	dims := make([]int, ndim)
	total := 1
	for i := range dims {
		d := int(binary.BigEndian.Uint32(head[4+4*i:]))
		if d > MaxElements || (d != 0 && total > MaxElements/d) {
			return nil, nil, fmt.Errorf("%s: %w: dimension %d at byte %d (%d) makes more than %d elements", what, ErrShape, i, 4+4*i, d, MaxElements)
		}
		dims[i] = d
		total *= d
	}
	// Grow with the data actually read, never to the header's claim up front.
	var buf bytes.Buffer
	buf.Grow(min(total, readChunk))
	n, err := io.CopyN(&buf, src, int64(total))
	if err != nil {
		why, kind := readFailure(err)
		return nil, nil, fmt.Errorf("%s: %w: dimensions %v need %d data bytes at byte %d, got %d%s", what, kind, dims, total, len(head), n, why)
	}
	var one [1]byte
	m, err := io.ReadFull(src, one[:])
	if m > 0 {
		return nil, nil, fmt.Errorf("%s: %w: bytes follow the %d data bytes at byte %d", what, ErrTrailing, total, len(head)+total)
	}
	if err != io.EOF {
		// A gzip stream reports a bad checksum or a cut-off trailer only here, at its end.
		_, kind := readFailure(err)
		return nil, nil, fmt.Errorf("%s: %w after the data: %v", what, kind, err)
	}
	return dims, buf.Bytes(), nil
}

// readFailure tells a stream that ended early (ErrTruncated) from one whose compressed
// data is damaged (ErrCorrupt, with the decompressor's reason).
func readFailure(err error) (string, error) {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "", ErrTruncated
	}
	return " (" + err.Error() + ")", ErrCorrupt
}
