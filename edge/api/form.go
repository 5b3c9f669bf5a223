package api

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

// maxFieldBytes caps a plain (non-file) form field such as eps or method.
const maxFieldBytes = 256

// maxParts caps the number of parts, so a body of many empty parts cannot keep the
// handler busy.
const maxParts = 32

// form is a parsed multipart/form-data body: file parts by name (with the file name
// the client gave) and plain fields.
type form struct {
	files     map[string][]byte
	fileNames map[string]string
	fields    map[string]string
}

// errBodyTooLarge is returned by limitedBody past its limit.
var errBodyTooLarge = errors.New("request body too large")

// limitedBody fails with errBodyTooLarge once more than n bytes were read. Unlike
// io.LimitReader it reports the overrun instead of a silent EOF, which would look like a
// truncated body.
type limitedBody struct {
	r io.Reader
	n int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	if l.n < 0 {
		return k, errBodyTooLarge
	}
	return k, err
}

// readForm reads the request as multipart/form-data. limits maps every accepted part
// name to its byte limit; files lists the names that are file parts (the others are
// plain fields of at most maxFieldBytes). Unknown or repeated parts are errors, so a
// typo in a field name is not silently ignored.
func readForm(r *http.Request, maxBody int64, files map[string]int64, fields []string) (*form, *Error) {
	if r.ContentLength > maxBody {
		return nil, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, maxBody)
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/form-data" {
		return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
			"Content-Type must be multipart/form-data (got %q)", truncate(ct, 64))
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, badRequest("multipart/form-data Content-Type has no boundary")
	}
	if r.Body == nil {
		return nil, badRequest("empty request body")
	}
	body := &limitedBody{r: r.Body, n: maxBody}
	mr := multipart.NewReader(body, boundary)
	f := &form{files: map[string][]byte{}, fileNames: map[string]string{}, fields: map[string]string{}}
	isField := map[string]bool{}
	for _, n := range fields {
		isField[n] = true
	}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bodyError(body, err)
		}
		if parts >= maxParts {
			return nil, badRequest("more than %d parts in the form", maxParts)
		}
		name := p.FormName()
		limit, isFile := files[name]
		switch {
		case name == "":
			return nil, badRequest("form part %d has no name (Content-Disposition: form-data; name=...)", parts+1)
		case isFile:
		case isField[name]:
			limit = maxFieldBytes
		default:
			return nil, badRequest("unknown form part %q (accepted: %s)", truncate(name, 40), accepted(files, fields))
		}
		if _, dup := f.files[name]; dup {
			return nil, badRequest("form part %q given twice", name)
		}
		if _, dup := f.fields[name]; dup {
			return nil, badRequest("form part %q given twice", name)
		}
		b, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, bodyError(body, err)
		}
		if int64(len(b)) > limit {
			return nil, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
				"form part %q exceeds its limit of %d bytes", name, limit)
		}
		if isFile {
			f.files[name] = b
			f.fileNames[name] = p.FileName()
		} else {
			f.fields[name] = strings.TrimSpace(string(b))
		}
	}
	return f, nil
}

func bodyError(body *limitedBody, err error) *Error {
	if errors.Is(err, errBodyTooLarge) || body.n < 0 {
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds the limit")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badRequest("malformed multipart body: truncated (%v)", err)
	}
	return badRequest("malformed multipart body: %v", err)
}

func accepted(files map[string]int64, fields []string) string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	names = append(names, fields...)
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// bytes is the size of the parts held in memory.
func (f *form) bytes() int64 {
	var n int64
	for _, b := range f.files {
		n += int64(len(b))
	}
	return n
}

// str returns field name or def when absent.
func (f *form) str(name, def string) string {
	if v, ok := f.fields[name]; ok && v != "" {
		return v
	}
	return def
}

func (f *form) float(name string, def float64, required bool) (float64, *Error) {
	v, ok := f.fields[name]
	if !ok || v == "" {
		if required {
			return 0, badRequest("field %q is required", name)
		}
		return def, nil
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, badRequest("field %q: %q is not a number", name, truncate(v, 32))
	}
	return x, nil
}

func (f *form) int(name string, def int) (int, *Error) {
	v, ok := f.fields[name]
	if !ok || v == "" {
		return def, nil
	}
	x, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("field %q: %q is not an integer", name, truncate(v, 32))
	}
	return x, nil
}

func (f *form) bool(name string) (bool, *Error) {
	v, ok := f.fields[name]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("field %q: %q is not true or false", name, truncate(v, 32))
	}
	return b, nil
}

// modelName is what the CLI reports for a model file: its base name without the
// extension; "model" when the client sent no file name.
func modelName(fileName string) string {
	base := path.Base(strings.ReplaceAll(fileName, "\\", "/"))
	if base == "." || base == "/" || base == "" {
		return "model"
	}
	if ext := path.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}
