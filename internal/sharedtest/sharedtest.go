// Package sharedtest locates the shared test data (models, samples, auto_LiRPA reference
// values, VNN-COMP instances) that lives outside the repository in ../shared/testdata,
// and reads the reference JSON files. Only tests and benchmarks use it.
package sharedtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared testdata directory: $GRAFTCERT_TESTDATA if set, otherwise the
// first shared/testdata found walking up from the working directory.
func Dir() (string, error) {
	if d := os.Getenv("GRAFTCERT_TESTDATA"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, c := range []string{filepath.Join(d, "shared", "testdata"), filepath.Join(d, "..", "shared", "testdata")} {
			if st, err := os.Stat(filepath.Join(c, "models")); err == nil && st.IsDir() {
				return filepath.Clean(c), nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("shared/testdata not found above %s (set GRAFTCERT_TESTDATA)", wd)
		}
	}
}

// Path joins elements onto the shared testdata directory, failing the test if it is
// missing.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	d, err := Dir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(append([]string{d}, elem...)...)
}

// Models lists the shared model names (file names without .onnx), in the order of
// the testdata README.
var Models = []string{
	"mnist_6_100", "mnist_9_100", "mnist_6_200", "mnist_9_200", "mnist_conv_small",
	"mnist_cnn_a_adv", "cifar_conv_small", "cifar_cnn_a_adv", "cifar_cnn_a_adv4",
	"cifar_cnn_a_mix", "cifar_cnn_a_mix4", "oval_cifar_base", "oval_cifar_wide",
	"oval_cifar_deep", "mnist_6_100_graft50", "cifar_conv_small_graft50",
}

// Sample is one sample's reference values, as computed by auto_LiRPA.
type Sample struct {
	Index                int       `json:"index"`
	Label                int       `json:"label"`
	Pred                 int       `json:"pred"`
	Logits               []float64 `json:"logits"`
	IBPMarginLB          []float64 `json:"ibp_margin_lb"`
	CROWNMarginLB        []float64 `json:"crown_margin_lb"`
	CROWNLogitLB         []float64 `json:"crown_logit_lb"`
	CROWNLogitUB         []float64 `json:"crown_logit_ub"`
	CROWNUnstablePerReLU []int     `json:"crown_unstable_per_relu"`
	AlphaCROWNMarginLB   []float64 `json:"alpha_crown_margin_lb"`
}

// Reference is one reference/<model>.json file.
type Reference struct {
	Model       string   `json:"model"`
	Dataset     string   `json:"dataset"`
	Eps         float64  `json:"eps"`
	CleanAccAll *float64 `json:"clean_acc_all"`
	Samples     []Sample `json:"samples"`
}

// LoadReference reads reference/<model>.json.
func LoadReference(tb testing.TB, model string) *Reference {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, "reference", model+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var r Reference
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatalf("reference %s: %v", model, err)
	}
	return &r
}
