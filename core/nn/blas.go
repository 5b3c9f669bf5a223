package nn

import "github.com/graftcert/graftcert/core/blas"

// Every product of the forward pass, the bound engine and the trainer goes through
// gonum's blas64; core/blas's Dgemm is several times faster than gonum's pure-Go one,
// and every command, test and the browser worker imports core/nn.
func init() { blas.Install() }
