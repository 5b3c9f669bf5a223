package bab

// Temporary debugging hooks (removed before delivery).
var dbgHook func(q *queue[*idom])
var dbgLook func(depth int, it func(func(a, b *idom)))
