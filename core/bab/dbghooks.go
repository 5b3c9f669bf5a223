package bab

import "github.com/graftcert/graftcert/core/crown"

// Temporary debugging hooks (removed before delivery).
var dbgHook func(q *queue[*idom])
var dbgLook func(depth int, it func(func(a, b *idom)))

var dbgRelu func(q *queue[*crown.Domain])
