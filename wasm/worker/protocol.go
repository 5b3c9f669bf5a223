package worker

import (
	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/certify"
)

// Version is the protocol version: every message carries it as "v". A request of
// another version is answered with an error, so a page and a worker built from
// different releases fail loudly instead of misreading each other.
const Version = 1

// Request types.
const (
	TypeLoad   = "load"   // model bytes (buffer "model") → Summary
	TypeData   = "data"   // samples: .npy buffers "x" and "y", or X/Shape/Labels inline
	TypeBounds = "bounds" // eps box bounds of the listed samples, one progress message per sample
	TypeEval   = "eval"   // forward pass of the listed samples → certify.EvalReport
	TypeGraft  = "graft"  // score, graft and fine-tune the loaded model → ONNX bytes
	TypeVerify = "verify" // complete verification of one sample (needs core/bab)
)

// Response types.
const (
	TypeReady    = "ready"    // sent once when the worker has started
	TypeProgress = "progress" // zero or more per request
	TypeResult   = "result"   // exactly one of result or error ends every request
	TypeError    = "error"
)

// Request is one message from the page. Binary inputs (model, .npy files) travel
// beside it as named buffers, not inside the JSON.
type Request struct {
	V    int    `json:"v"`
	ID   int64  `json:"id"`
	Type string `json:"type"`

	// load
	Name     string `json:"name,omitempty"`
	MaxBytes int64  `json:"maxBytes,omitempty"` // memory budget; 0 means DefaultMaxBytes

	// data: either buffers "x" and "y" (.npy), or X with Shape (per-sample shape) and
	// Labels inline. An inline label of -1 means "the model's prediction" (a drawn
	// image has no ground truth; certifying it certifies the prediction).
	X      []float64 `json:"x,omitempty"`
	Shape  []int     `json:"shape,omitempty"`
	Labels []int     `json:"labels,omitempty"`

	// bounds and eval
	Eps        float64 `json:"eps,omitempty"`
	Method     string  `json:"method,omitempty"`
	Indices    []int   `json:"indices,omitempty"`
	Iterations int     `json:"iterations,omitempty"`
	LR         float64 `json:"lr,omitempty"`
	Logits     bool    `json:"logits,omitempty"`
	// NoEarlyStop runs every α-CROWN iteration even once all margins are proven
	// (the CLI's --early-stop=false).
	NoEarlyStop bool `json:"noEarlyStop,omitempty"`

	// graft (training samples in buffers "trainX" and "trainY", .npy)
	Ratio       float64 `json:"ratio,omitempty"`
	Score       string  `json:"score,omitempty"` // magnitude (default) or gradient
	PerLayer    bool    `json:"perLayer,omitempty"`
	Prune       bool    `json:"prune,omitempty"`
	Epochs      int     `json:"epochs,omitempty"`
	Calibration int     `json:"calibration,omitempty"` // samples scored; 0 means 1000
	TrainCount  int     `json:"trainCount,omitempty"`  // training samples used; 0 means all
	BatchSize   int     `json:"batchSize,omitempty"`
	Seed        uint64  `json:"seed,omitempty"`
	NoGradAlign bool    `json:"noGradAlign,omitempty"`

	// verify: one sample (Indices[0]) at Eps. Shard makes this worker one of Count
	// that share the sample's branch-and-bound subdomains (bab.Shard): its verdict
	// "verified" then covers its share only. Rows instead restricts the proof to some
	// margin rows (row r is label − class r, or r+1 past the label); none means all
	// rows. Shard and Rows do not combine.
	Timeout    float64    `json:"timeout,omitempty"` // seconds; 0 means 60
	Rows       []int      `json:"rows,omitempty"`
	MaxDomains int        `json:"maxDomains,omitempty"`
	Shard      *ShardSpec `json:"shard,omitempty"`
	// Refine is the share of the time left that refining intermediate bounds may take
	// when a first short branch and bound stalls (bab.Options.Refine); 0 means off.
	// Sharded runs ignore it: their common rounds must not depend on the clock.
	Refine float64 `json:"refine,omitempty"`
}

// ShardSpec names one of Count workers sharing a verification; Count ≤ 1 is no
// sharing.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Response is one message to the page. Only the fields of its type are set.
type Response struct {
	V    int    `json:"v"`
	ID   int64  `json:"id"`
	Type string `json:"type"`

	// ready
	Protocol int      `json:"protocol,omitempty"`
	Go       string   `json:"go,omitempty"`
	Features []string `json:"features,omitempty"`
	// Kernel names the matrix-product kernel the worker runs: "wasm-simd128" (the
	// SIMD module static/worker.js loads, package wasm/gemmsimd) or "go".
	Kernel string `json:"kernel,omitempty"`

	// error
	Message string `json:"message,omitempty"`
	// Code classifies errors the page treats specially: "too_big" (with
	// EstimatedBytes and LimitBytes), "unsupported", "bad_request", "no_model",
	// "no_data", "panic".
	Code           string `json:"code,omitempty"`
	EstimatedBytes int64  `json:"estimatedBytes,omitempty"`
	LimitBytes     int64  `json:"limitBytes,omitempty"`

	// progress
	Done   int                   `json:"done,omitempty"`
	Total  int                   `json:"total,omitempty"`
	Sample *certify.SampleReport `json:"sample,omitempty"`
	Stage  string                `json:"stage,omitempty"` // graft: "score", "train"
	Epoch  *EpochReport          `json:"epoch,omitempty"`
	BaB    *BaBProgress          `json:"bab,omitempty"`

	// result
	Summary *Summary               `json:"summary,omitempty"` // load, graft
	Data    *DataSummary           `json:"data,omitempty"`    // data
	Samples []certify.SampleReport `json:"samples,omitempty"` // bounds
	Eval    *certify.EvalReport    `json:"eval,omitempty"`    // eval
	Graft   *GraftReport           `json:"graft,omitempty"`   // graft; the ONNX bytes travel as the buffer "model"
	Verify  *VerifyReport          `json:"verify,omitempty"`  // verify
}

// BaBProgress is the state of a branch and bound run.
type BaBProgress struct {
	Domains int     `json:"domains"` // open subdomains
	Bounded int     `json:"bounded"` // subdomains bounded so far
	Lower   float64 `json:"lower"`   // smallest bound over the open subdomains
	Seconds float64 `json:"seconds"`
}

// VerifyReport is the verdict on one sample: its JSON is a sample of `graftcert
// verify --data --json` plus the rows or the shard it covers and the search
// statistics.
type VerifyReport struct {
	Index          int       `json:"index"`
	Label          int       `json:"label"`
	Pred           int       `json:"pred"`
	Result         string    `json:"result"` // verified, falsified, unknown, timeout (rows only), misclassified
	Seconds        float64   `json:"seconds"`
	Counterexample []float64 `json:"counterexample"`
	Rows           []int     `json:"rows,omitempty"`
	// Domains counts the subdomains this worker bounded.
	Domains int `json:"domains"`
	// Shard, for a sharded request, says what the worker shared out and kept: the page
	// combines the verdicts only when every shard has the same fingerprint. Absent
	// when the sample was decided before branch and bound (misclassified).
	Shard *bab.ShardStats `json:"shard,omitempty"`
}

// Summary describes a loaded model: what the page shows before certifying.
type Summary struct {
	Name     string         `json:"name"`
	Bytes    int            `json:"bytes"`
	Producer string         `json:"producer"`
	Opset    int64          `json:"opset"`
	Ops      map[string]int `json:"ops"`
	Input    []int          `json:"input"`
	Classes  int            `json:"classes"`
	Params   int            `json:"params"`
	// ReLUs counts activation neurons (grafted ones included); Grafted counts those
	// replaced by a line.
	ReLUs   int         `json:"relus"`
	Grafted int         `json:"grafted"`
	Layers  []LayerInfo `json:"layers"`
	// EstimatedBytes is the memory a CROWN run is estimated to need (EstimateMemory);
	// AlphaBytes the same for α-CROWN; LimitBytes the budget they were checked against.
	EstimatedBytes int64 `json:"estimatedBytes"`
	AlphaBytes     int64 `json:"alphaBytes"`
	LimitBytes     int64 `json:"limitBytes"`
}

// LayerInfo is one layer of the model summary.
type LayerInfo struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Out     []int  `json:"out"`
	Params  int    `json:"params"`
	Neurons int    `json:"neurons,omitempty"` // activation layers only
	Grafted int    `json:"grafted,omitempty"`
}

// DataSummary describes loaded samples.
type DataSummary struct {
	Count  int   `json:"count"`
	Shape  []int `json:"shape"` // per sample
	Labels []int `json:"labels"`
}

// EpochReport is one finished fine-tuning epoch (or a step inside it).
type EpochReport struct {
	Epoch    int     `json:"epoch"`
	Epochs   int     `json:"epochs"`
	Step     int     `json:"step,omitempty"`
	Steps    int     `json:"steps,omitempty"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	Seconds  float64 `json:"seconds,omitempty"`
}

// GraftReport is the result of a graft request.
type GraftReport struct {
	Grafted int           `json:"grafted"`
	Total   int           `json:"total"`
	Ratio   float64       `json:"ratio"`
	Score   string        `json:"score"`
	Prune   bool          `json:"prune"`
	Epochs  []EpochReport `json:"epochs"`
	Seconds float64       `json:"seconds"`
}
