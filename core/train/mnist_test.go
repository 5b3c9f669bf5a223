package train

import (
	"context"
	"testing"

	"github.com/graftcert/graftcert/core/data"
)

// A short seeded FGSM-RS + GradAlign run on a small real MNIST subset lowers the test
// loss well below chance level (ln 10 ≈ 2.30).
func TestTrainMNISTSubset(t *testing.T) {
	X, y, err := data.LoadMNIST("train")
	if err != nil {
		t.Fatal(err)
	}
	Xt, yt, err := data.LoadMNIST("test")
	if err != nil {
		t.Fatal(err)
	}
	const n, nt = 2000, 1000
	tr := Data{X: X[:n*784], Labels: y[:n]}
	te := Data{X: Xt[:nt*784], Labels: yt[:nt]}
	net, err := Architecture("mlp-6x100", 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := Evaluate(ctx, net, te, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultTrain(0.02)
	o.Epochs = 4
	o.BatchSize = 64
	hist, err := Train(ctx, net, tr, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Evaluate(ctx, net, te, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("test loss %.3f → %.3f, accuracy %.3f → %.3f; train loss at epochs 1, 2, 4: %.3f %.3f %.3f",
		before.Loss, after.Loss, before.Accuracy, after.Accuracy, hist[0].Loss, hist[1].Loss, hist[3].Loss)
	if before.Loss < 2 || after.Loss > 0.8 || after.Accuracy < 0.75 || !(hist[3].Loss < hist[0].Loss) {
		t.Fatalf("test loss %v → %v, accuracy %v", before.Loss, after.Loss, after.Accuracy)
	}
}
