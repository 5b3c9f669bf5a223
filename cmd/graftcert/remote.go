package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/data"
)

// remoteOptions are the --remote flags of bounds: the samples go to a deployed edge
// endpoint (POST URL/api/bounds) in batches instead of being bounded here.
type remoteOptions struct {
	URL     string
	Jobs    int           // batches in flight at once
	Batch   int           // samples per request
	Retries int           // further attempts after a failed one
	Backoff time.Duration // wait before the first retry; doubles each time (capped at 30 s)
	Timeout time.Duration // per request
	client  *http.Client
}

func remoteFlags(fs *flag.FlagSet) *remoteOptions {
	o := &remoteOptions{}
	fs.StringVar(&o.URL, "remote", "", "bound on the graftcert edge service at `URL` (e.g. https://graftcert.example.workers.dev) instead of locally; several comma-separated URLs share the batches round-robin, and a retry goes to the next one")
	fs.IntVar(&o.Jobs, "remote-jobs", 4, "with --remote: requests in flight at once")
	fs.IntVar(&o.Batch, "remote-batch", 4, "with --remote: samples per request (split further when the service answers over_budget)")
	fs.IntVar(&o.Retries, "remote-retries", 4, "with --remote: retries of a request after a network error, 429 or 5xx")
	fs.DurationVar(&o.Backoff, "remote-backoff", 500*time.Millisecond, "with --remote: wait before the first retry, doubled for each further one (jittered, at most 30s; a Retry-After header is honoured)")
	fs.DurationVar(&o.Timeout, "remote-timeout", 10*time.Minute, "with --remote: time limit of one request")
	return o
}

// apiError is the edge service's JSON error body.
type apiError struct {
	Message    string `json:"error"`
	Code       string `json:"code"`
	MaxSamples *int   `json:"max_samples"`
}

// remoteStatusError is a non-2xx answer.
type remoteStatusError struct {
	status     int
	body       apiError
	retryAfter time.Duration
}

func (e *remoteStatusError) Error() string {
	msg := e.body.Message
	if msg == "" {
		msg = http.StatusText(e.status)
	}
	return fmt.Sprintf("edge service: %d: %s", e.status, msg)
}

// retryable: network trouble, rate limiting and server errors may pass; a 4xx other
// than 408/429 is the request's own fault and will not.
func retryable(err error) bool {
	var se *remoteStatusError
	if errors.As(err, &se) {
		return se.status == http.StatusTooManyRequests || se.status == http.StatusRequestTimeout || se.status >= 500
	}
	return !errors.Is(err, context.Canceled)
}

// bounds bounds the samples idx of X on the edge service. Each request carries the
// model and only its batch's samples (as float64 .npy, so the service sees exactly
// the values read here); the service's indices, relative to the batch, are mapped back.
// The report equals a local run's except for the timing fields: Seconds is this
// call's wall time, each sample's seconds the service's.
func (o *remoteOptions) bounds(ctx context.Context, modelPath string, inSize int, X []float64, labels []int, idx []int, opts certify.Options, progress certify.Progress) (*certify.Report, error) {
	start := time.Now()
	if o.Jobs < 1 || o.Batch < 1 || o.Retries < 0 {
		return nil, errors.New("--remote-jobs and --remote-batch must be positive, --remote-retries not negative")
	}
	var urls []string
	for _, u := range strings.Split(o.URL, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("--remote %q: want http:// or https:// URLs", o.URL)
		}
		urls = append(urls, u+"/api/bounds")
	}
	model, err := os.ReadFile(modelPath)
	if err != nil {
		return nil, err
	}
	if o.client == nil {
		o.client = &http.Client{}
	}
	rep := &certify.Report{Model: modelName(modelPath), Method: string(opts.Bound.Method), Eps: opts.Eps,
		Total: len(idx), Samples: make([]certify.SampleReport, len(idx))}
	if rep.Method == "" {
		rep.Method = "crown"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		pos []int // positions in idx
		url int   // first endpoint to try
	}
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
		work     = make(chan batch)
		pending  sync.WaitGroup // batches not finished (split ones add more)
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	var submit func(b batch)
	nextURL := 0
	submit = func(b batch) {
		pending.Add(1)
		mu.Lock()
		b.url = nextURL % len(urls)
		nextURL++
		mu.Unlock()
		go func() {
			select {
			case work <- b:
			case <-ctx.Done():
				pending.Done()
			}
		}()
	}
	for w := 0; w < o.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				res, err := o.post(ctx, urls, b.url, model, rep.Model, inSize, X, labels, idx, b.pos, opts)
				var se *remoteStatusError
				if errors.As(err, &se) && se.body.Code == "over_budget" && len(b.pos) > 1 {
					// Too much for one request: split to what the service says fits, or
					// in halves when it does not say.
					n := len(b.pos) / 2
					if se.body.MaxSamples != nil && *se.body.MaxSamples > 0 {
						n = min(len(b.pos)-1, *se.body.MaxSamples)
					}
					for i := 0; i < len(b.pos); i += max(1, n) {
						submit(batch{pos: b.pos[i:min(len(b.pos), i+max(1, n))]})
					}
					pending.Done()
					continue
				}
				if err != nil {
					fail(err)
					pending.Done()
					continue
				}
				mu.Lock()
				err = o.place(rep, res, idx, b.pos)
				if err == nil {
					done += len(b.pos)
				}
				d := done
				mu.Unlock()
				if err != nil {
					fail(err)
				} else if progress != nil {
					progress(d, len(idx))
				}
				pending.Done()
			}
		}()
	}
	for i := 0; i < len(idx); i += o.Batch {
		pos := make([]int, 0, o.Batch)
		for k := i; k < min(len(idx), i+o.Batch); k++ {
			pos = append(pos, k)
		}
		submit(batch{pos: pos})
	}
	pending.Wait()
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, s := range rep.Samples {
		if s.Verified {
			rep.Verified++
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// place checks one answer against its batch and stores its samples.
func (o *remoteOptions) place(rep *certify.Report, res *certify.Report, idx, pos []int) error {
	if res.Method != rep.Method || res.Eps != rep.Eps {
		return fmt.Errorf("edge service answered for method %q eps %v, asked %q eps %v", res.Method, res.Eps, rep.Method, rep.Eps)
	}
	if len(res.Samples) != len(pos) {
		return fmt.Errorf("edge service answered %d samples for a batch of %d", len(res.Samples), len(pos))
	}
	for j, s := range res.Samples {
		if s.Index != j {
			return fmt.Errorf("edge service answered sample %d at position %d of its batch", s.Index, j)
		}
		s.Index = idx[pos[j]]
		rep.Samples[pos[j]] = s
	}
	return nil
}

// post sends one batch to urls[first], retrying with exponential backoff on the
// following endpoints in turn.
func (o *remoteOptions) post(ctx context.Context, urls []string, first int, model []byte, name string, inSize int, X []float64, labels []int, idx, pos []int, opts certify.Options) (*certify.Report, error) {
	body, ctype, err := boundsForm(model, name, inSize, X, labels, idx, pos, opts)
	if err != nil {
		return nil, err
	}
	wait := o.Backoff
	for attempt := 0; ; attempt++ {
		res, err := o.once(ctx, urls[(first+attempt)%len(urls)], body, ctype)
		if err == nil {
			return res, nil
		}
		if attempt >= o.Retries || !retryable(err) || ctx.Err() != nil {
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return nil, err
		}
		d := wait/2 + time.Duration(rand.Int64N(int64(wait)+1)) // jitter in [wait/2, 1.5·wait]
		var se *remoteStatusError
		if errors.As(err, &se) && se.retryAfter > 0 {
			d = se.retryAfter
		}
		select {
		case <-time.After(min(d, 30*time.Second)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (o *remoteOptions) once(ctx context.Context, url string, body []byte, ctype string) (*certify.Report, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("edge service: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		se := &remoteStatusError{status: resp.StatusCode}
		if json.Unmarshal(b, &se.body) != nil || se.body.Message == "" {
			se.body.Message = strings.TrimSpace(truncateString(string(b), 200))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
		return nil, se
	}
	var rep certify.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("edge service: answer is not a bounds report: %w", err)
	}
	return &rep, nil
}

// boundsForm builds the multipart body of one batch: the model, the batch's samples
// and labels as .npy, and the options as fields.
func boundsForm(model []byte, name string, inSize int, X []float64, labels []int, idx, pos []int, opts certify.Options) ([]byte, string, error) {
	xs := make([]float64, 0, len(pos)*inSize)
	ys := make([]float64, 0, len(pos))
	for _, p := range pos {
		i := idx[p]
		xs = append(xs, X[i*inSize:(i+1)*inSize]...)
		ys = append(ys, float64(labels[i]))
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	part := func(field, file string, write func(io.Writer) error) error {
		w, err := mw.CreateFormFile(field, file)
		if err != nil {
			return err
		}
		return write(w)
	}
	if err := part("model", name+".onnx", func(w io.Writer) error { _, err := w.Write(model); return err }); err != nil {
		return nil, "", err
	}
	if err := part("data", "data.npy", func(w io.Writer) error {
		return data.WriteNPY(w, &data.Array{Shape: []int{len(pos), inSize}, DType: "<f8", Data: xs})
	}); err != nil {
		return nil, "", err
	}
	if err := part("labels", "labels.npy", func(w io.Writer) error {
		return data.WriteNPY(w, &data.Array{Shape: []int{len(pos)}, DType: "<i8", Data: ys})
	}); err != nil {
		return nil, "", err
	}
	method := string(opts.Bound.Method)
	if method == "" {
		method = "crown"
	}
	fields := [][2]string{
		{"eps", strconv.FormatFloat(opts.Eps, 'g', -1, 64)},
		{"method", method},
		{"logits", strconv.FormatBool(opts.Logits)},
		{"early_stop", strconv.FormatBool(opts.Bound.StopWhenPositive)},
	}
	if opts.Bound.Iterations > 0 {
		fields = append(fields, [2]string{"iterations", strconv.Itoa(opts.Bound.Iterations)})
	}
	if opts.Bound.LR > 0 {
		fields = append(fields, [2]string{"lr", strconv.FormatFloat(opts.Bound.LR, 'g', -1, 64)})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// outputTo runs write on stdout, or, when path is set, on a temporary file beside path
// that is renamed over it once complete: a scheduler that kills a shard midway leaves
// no partial output for merge to pick up.
func outputTo(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
