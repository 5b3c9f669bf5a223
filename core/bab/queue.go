package bab

import "container/heap"

// queue is a priority queue of subdomains: lowest value first (the subdomain furthest
// from proven, so the global lower bound rises fastest), or, once memory runs short,
// highest value first (the subdomains closest to proven, which shrink the queue).
type queue[T any] struct {
	items   []T
	value   func(T) float64
	bytes   func(T) int
	reverse bool
	total   int
}

func newQueue[T any](value func(T) float64, bytes func(T) int) *queue[T] {
	return &queue[T]{value: value, bytes: bytes}
}

func (q *queue[T]) Len() int { return len(q.items) }
func (q *queue[T]) Less(i, j int) bool {
	if q.reverse {
		return q.value(q.items[i]) > q.value(q.items[j])
	}
	return q.value(q.items[i]) < q.value(q.items[j])
}
func (q *queue[T]) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *queue[T]) Push(x any)    { q.items = append(q.items, x.(T)) }
func (q *queue[T]) Pop() any {
	n := len(q.items)
	x := q.items[n-1]
	var zero T
	q.items[n-1] = zero
	q.items = q.items[:n-1]
	return x
}

func (q *queue[T]) push(x T) {
	q.total += q.bytes(x)
	heap.Push(q, x)
}

func (q *queue[T]) pop() T {
	x := heap.Pop(q).(T)
	q.total -= q.bytes(x)
	return x
}

// setReverse switches the order.
func (q *queue[T]) setReverse(r bool) {
	if r != q.reverse {
		q.reverse = r
		heap.Init(q)
	}
}

// min returns the smallest value in the queue (+Inf when empty).
func (q *queue[T]) min() float64 {
	m := inf
	for _, x := range q.items {
		if v := q.value(x); v < m {
			m = v
		}
	}
	return m
}

// lowest returns up to k items with the smallest values (unordered).
func (q *queue[T]) lowest(k int) []T {
	var out []T
	for _, x := range q.items {
		if len(out) < k {
			out = append(out, x)
			continue
		}
		w := 0
		for i := range out {
			if q.value(out[i]) > q.value(out[w]) {
				w = i
			}
		}
		if q.value(x) < q.value(out[w]) {
			out[w] = x
		}
	}
	return out
}
