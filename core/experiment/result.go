package experiment

// Result is a finished (or partly finished) run: one Row per model, baseline first, then
// for every ratio the pruned and the grafted model.
type Result struct {
	Arch    string  `json:"arch"`
	Eps     float64 `json:"eps"`
	Seed    uint64  `json:"seed"`
	Command string  `json:"command,omitempty"`
	// Protocol restates the settings in words for the report.
	Protocol Protocol `json:"protocol"`
	Rows     []Row    `json:"rows"`
	// Layers names the activation layers, in order (the columns of Unstable).
	Layers []string `json:"layers"`
	// WallSeconds is the run's wall time (for a resumed run: this invocation's).
	WallSeconds float64 `json:"wall_seconds"`
	Cores       int     `json:"cores"`
}

// Protocol is the part of Config that the report states.
type Protocol struct {
	TrainSamples    int       `json:"train_samples"`
	TestSamples     int       `json:"test_samples"`
	TrainEpochs     int       `json:"train_epochs"`
	FineTuneEpochs  int       `json:"finetune_epochs"`
	Ratios          []float64 `json:"ratios"`
	Score           string    `json:"score"`
	PerLayer        bool      `json:"per_layer"`
	Instability     float64   `json:"instability,omitempty"`
	Calibration     int       `json:"calibration"`
	CleanCount      int       `json:"clean_count"`
	PGDCount        int       `json:"pgd_count"`
	PGDSteps        int       `json:"pgd_steps"`
	PGDRestarts     int       `json:"pgd_restarts"`
	CROWNCount      int       `json:"crown_count"`
	AlphaCount      int       `json:"alpha_count"`
	AlphaIterations int       `json:"alpha_iterations"`
	CompleteName    string    `json:"complete_name,omitempty"`
	CompleteCount   int       `json:"complete_count,omitempty"`
	CompleteTimeout float64   `json:"complete_timeout_seconds,omitempty"`
	BaselineGiven   bool      `json:"baseline_given,omitempty"`
}

// Row is one model's measurements.
type Row struct {
	Model string  `json:"model"` // file stem in the work directory: baseline, pruned-0.5, grafted-0.5
	Kind  string  `json:"kind"`  // baseline, pruned or grafted
	Ratio float64 `json:"ratio"` // 0 for the baseline
	// Grafted counts the linear neurons per activation layer, out of Neurons.
	Grafted []int `json:"grafted"`
	Neurons []int `json:"neurons"`

	Fit Fit `json:"fit"`

	Clean    Accuracy      `json:"clean"`
	PGD      Accuracy      `json:"pgd"`
	CROWN    *Verification `json:"crown,omitempty"`
	Alpha    *Verification `json:"alpha_crown,omitempty"`
	Complete *Complete     `json:"complete,omitempty"`

	// ModelKey and Keys record the settings the model and each measurement column were
	// made with, for Resume.
	ModelKey string            `json:"model_key"`
	Keys     map[string]string `json:"keys,omitempty"`
}

// Fit is how the model was trained or fine-tuned.
type Fit struct {
	Epochs    int     `json:"epochs"`
	Samples   int     `json:"samples"` // training samples processed (epochs × set size)
	Seconds   float64 `json:"seconds"`
	FinalLoss float64 `json:"final_loss"`
	FinalAcc  float64 `json:"final_train_acc"` // accuracy on the last epoch's adversarial inputs
	Reused    bool    `json:"reused,omitempty"`
}

// Accuracy is a fraction of a test subset.
type Accuracy struct {
	Correct int     `json:"correct"`
	Total   int     `json:"total"`
	Seconds float64 `json:"seconds"`
}

// Rate is Correct/Total (0 for an empty set).
func (a Accuracy) Rate() float64 {
	if a.Total == 0 {
		return 0
	}
	return float64(a.Correct) / float64(a.Total)
}

// Verification summarises an incomplete verifier over the first Total test images.
type Verification struct {
	Method   string `json:"method"`
	Verified int    `json:"verified"`
	Total    int    `json:"total"`
	// MeanMarginLB is the mean over the samples of the worst (smallest) margin lower bound
	// min_j lb(f_label − f_j): positive means verified.
	MeanMarginLB float64 `json:"mean_margin_lb"`
	// Unstable is the mean number of unstable neurons (l < 0 < u, grafted ones excluded)
	// per activation layer, over the samples.
	Unstable []float64 `json:"unstable"`
	Seconds  float64   `json:"seconds"` // wall time of the whole set
	// PerSample is the mean time one sample takes (summed sample times / Total),
	// independent of how many ran at once.
	PerSample float64 `json:"per_sample_seconds"`
}

// Rate is Verified/Total.
func (v *Verification) Rate() float64 {
	if v == nil || v.Total == 0 {
		return 0
	}
	return float64(v.Verified) / float64(v.Total)
}

// Complete summarises complete verification over the first Total test images.
type Complete struct {
	Verifier      string  `json:"verifier"`
	Verified      int     `json:"verified"`
	Falsified     int     `json:"falsified"`
	Unknown       int     `json:"unknown"`
	Misclassified int     `json:"misclassified"`
	Total         int     `json:"total"`
	Timeout       float64 `json:"timeout_seconds"`
	Seconds       float64 `json:"seconds"`
	PerSample     float64 `json:"per_sample_seconds"`
}

// Rate is Verified/Total.
func (c *Complete) Rate() float64 {
	if c == nil || c.Total == 0 {
		return 0
	}
	return float64(c.Verified) / float64(c.Total)
}

// Find returns the row of the given kind and ratio (ratio ignored for the baseline), or nil.
func (r *Result) Find(kind string, ratio float64) *Row {
	for i := range r.Rows {
		row := &r.Rows[i]
		if row.Kind == kind && (kind == "baseline" || row.Ratio == ratio) {
			return row
		}
	}
	return nil
}
