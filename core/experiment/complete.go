package experiment

import (
	"context"
	"fmt"
	"time"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/nn"
)

// BaB is graftcert's complete verifier (core/bab) as the experiment's complete column:
// PGD attack first (cheap, and it settles the non-robust samples at once), α-CROWN at the root, then branch and bound over ReLU splits with β-CROWN
// bounds, grafted neurons never split. Each sample runs on one goroutine, since the
// experiment already verifies Config.Jobs samples at once.
func BaB() CompleteVerifier {
	return CompleteVerifier{
		Name: "PGD + α-CROWN + β-CROWN branch and bound (core/bab)",
		Verify: func(ctx context.Context, net *nn.Network, x []float64, label int, eps float64, timeout time.Duration) (Verdict, error) {
			r, err := bab.VerifySample(ctx, net, x, label, 0, eps, bab.Options{Timeout: timeout, Seed: 1, Workers: 1, AttackFirst: true})
			if err != nil {
				return "", err
			}
			switch r.Result {
			case bab.Verified:
				return Verified, nil
			case bab.Falsified:
				return Falsified, nil
			case bab.Misclassified:
				return Misclassified, nil
			case bab.Undecided:
				return Unknown, nil
			}
			return "", fmt.Errorf("experiment: unexpected verdict %q from core/bab", r.Result)
		},
	}
}
