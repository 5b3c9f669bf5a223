package worker

import (
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
)

// DefaultMaxBytes is the memory budget of one worker, 1.5 GiB. A wasm32 instance can
// address 4 GiB, but Go's heap grows in steps and a tab holds one instance per worker
// plus the page, so a model whose estimate exceeds this is refused with the estimate
// and a pointer to the native CLI instead of crashing the tab.
const DefaultMaxBytes int64 = 1536 << 20

// EstimateMemory is the memory one bound computation of method on net is estimated
// to need in a worker: the model file (the worker keeps no other copy) plus the core's
// own estimate (crown.EstimateMemory: weights, boxes, the largest batch of bound rows
// and, for α-CROWN, every start node's tape and optimiser state), for the margin
// specification of net's classes.
func EstimateMemory(net *nn.Network, fileBytes int, method crown.Method) int64 {
	return int64(fileBytes) + crown.EstimateMemory(net, method, max(1, net.OutSize()-1))
}
