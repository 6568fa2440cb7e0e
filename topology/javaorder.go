package topology

// The successor and predecessor lists of Kafka Streams' describe() are
// java.util.TreeSets ordered by sub-tree size, then name, filled while the
// sizes are still growing (InternalTopologyBuilder.describeSubtopology): an
// element's place is fixed by the comparisons made when it was inserted,
// against the sizes of that moment, and later size changes do not move it.
// So a node with two parents of equal final size (a join's merge node) can
// list them out of name order. Printing what Kafka Streams prints means
// replaying that construction: the nodes in the iteration order of a
// java.util.HashMap of their names, each linked to its predecessors in
// order, with every insertion going through java.util.TreeMap's own
// red-black tree.

// javaTreeSet is a java.util.TreeSet of nodes: TreeMap's insertion and
// rebalancing (put, fixAfterInsertion, rotateLeft, rotateRight), with a
// comparator that may change between insertions.
type javaTreeSet struct {
	root *javaTreeEntry
	cmp  func(a, b *Node) int
}

type javaTreeEntry struct {
	n                   *Node
	left, right, parent *javaTreeEntry
	black               bool
}

func (s *javaTreeSet) add(n *Node) {
	t := s.root
	if t == nil {
		s.root = &javaTreeEntry{n: n, black: true}
		return
	}
	var parent *javaTreeEntry
	c := 0
	for t != nil {
		parent = t
		c = s.cmp(n, t.n)
		switch {
		case c < 0:
			t = t.left
		case c > 0:
			t = t.right
		default:
			return
		}
	}
	e := &javaTreeEntry{n: n, parent: parent, black: true}
	if c < 0 {
		parent.left = e
	} else {
		parent.right = e
	}
	s.fixAfterInsertion(e)
}

func (s *javaTreeSet) nodes() []*Node {
	var out []*Node
	var walk func(e *javaTreeEntry)
	walk = func(e *javaTreeEntry) {
		if e == nil {
			return
		}
		walk(e.left)
		out = append(out, e.n)
		walk(e.right)
	}
	walk(s.root)
	return out
}

func isBlack(e *javaTreeEntry) bool { return e == nil || e.black }

func parentOf(e *javaTreeEntry) *javaTreeEntry {
	if e == nil {
		return nil
	}
	return e.parent
}

func leftOf(e *javaTreeEntry) *javaTreeEntry {
	if e == nil {
		return nil
	}
	return e.left
}

func rightOf(e *javaTreeEntry) *javaTreeEntry {
	if e == nil {
		return nil
	}
	return e.right
}

func setBlack(e *javaTreeEntry, black bool) {
	if e != nil {
		e.black = black
	}
}

func (s *javaTreeSet) fixAfterInsertion(x *javaTreeEntry) {
	x.black = false
	for x != nil && x != s.root && !x.parent.black {
		if parentOf(x) == leftOf(parentOf(parentOf(x))) {
			y := rightOf(parentOf(parentOf(x)))
			if !isBlack(y) {
				setBlack(parentOf(x), true)
				setBlack(y, true)
				setBlack(parentOf(parentOf(x)), false)
				x = parentOf(parentOf(x))
			} else {
				if x == rightOf(parentOf(x)) {
					x = parentOf(x)
					s.rotateLeft(x)
				}
				setBlack(parentOf(x), true)
				setBlack(parentOf(parentOf(x)), false)
				s.rotateRight(parentOf(parentOf(x)))
			}
		} else {
			y := leftOf(parentOf(parentOf(x)))
			if !isBlack(y) {
				setBlack(parentOf(x), true)
				setBlack(y, true)
				setBlack(parentOf(parentOf(x)), false)
				x = parentOf(parentOf(x))
			} else {
				if x == leftOf(parentOf(x)) {
					x = parentOf(x)
					s.rotateRight(x)
				}
				setBlack(parentOf(x), true)
				setBlack(parentOf(parentOf(x)), false)
				s.rotateLeft(parentOf(parentOf(x)))
			}
		}
	}
	s.root.black = true
}

func (s *javaTreeSet) rotateLeft(p *javaTreeEntry) {
	if p == nil {
		return
	}
	r := p.right
	p.right = r.left
	if r.left != nil {
		r.left.parent = p
	}
	r.parent = p.parent
	switch {
	case p.parent == nil:
		s.root = r
	case p.parent.left == p:
		p.parent.left = r
	default:
		p.parent.right = r
	}
	r.left = p
	p.parent = r
}

func (s *javaTreeSet) rotateRight(p *javaTreeEntry) {
	if p == nil {
		return
	}
	l := p.left
	p.left = l.right
	if l.right != nil {
		l.right.parent = p
	}
	l.parent = p.parent
	switch {
	case p.parent == nil:
		s.root = l
	case p.parent.right == p:
		p.parent.right = l
	default:
		p.parent.left = l
	}
	l.right = p
	p.parent = l
}

// describeLinks replays describeSubtopology for the nodes of one
// sub-topology: it returns each node's successors and predecessors in the
// order Kafka Streams prints them.
func describeLinks(nodes []*Node) (succ, pred map[*Node][]*Node) {
	size := make(map[*Node]int, len(nodes))
	in := make(map[*Node]bool, len(nodes))
	for _, n := range nodes {
		size[n] = 1
		in[n] = true
	}
	cmp := func(a, b *Node) int {
		if a == b {
			return 0
		}
		if size[a] != size[b] {
			return size[b] - size[a]
		}
		return javaCompareStrings(a.Name, b.Name)
	}
	succs := make(map[*Node]*javaTreeSet, len(nodes))
	preds := make(map[*Node]*javaTreeSet, len(nodes))
	for _, n := range nodes {
		succs[n] = &javaTreeSet{cmp: cmp}
		preds[n] = &javaTreeSet{cmp: cmp}
	}
	// updateSize adds delta to n and, through the predecessors linked so
	// far, to everything above it.
	var updateSize func(n *Node, delta int)
	updateSize = func(n *Node, delta int) {
		size[n] += delta
		for _, p := range preds[n].nodes() {
			updateSize(p, delta)
		}
	}
	names := make([]string, len(nodes))
	byName := make(map[string]*Node, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
		byName[n.Name] = n
	}
	for _, name := range javaHashMapOrder(names) {
		n := byName[name]
		for _, p := range n.Parents {
			if !in[p] {
				continue
			}
			preds[n].add(p)
			succs[p].add(n)
			updateSize(p, size[n])
		}
	}
	succ = make(map[*Node][]*Node, len(nodes))
	pred = make(map[*Node][]*Node, len(nodes))
	for _, n := range nodes {
		succ[n] = succs[n].nodes()
		pred[n] = preds[n].nodes()
	}
	return succ, pred
}

// javaCompareStrings is String.compareTo: by UTF-16 code units.
func javaCompareStrings(a, b string) int {
	ua, ub := utf16Units(a), utf16Units(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return int(ua[i]) - int(ub[i])
		}
	}
	return len(ua) - len(ub)
}

// javaHashMapOrder returns ss (distinct) in the iteration order of a
// java.util.HashMap (or HashSet) created empty and filled with them in
// order: by bucket of the spread String.hashCode in a table that doubled
// from 16 whenever it was more than three quarters full, then insertion
// order within a bucket (a resize keeps the relative order of a bucket's
// entries).
func javaHashMapOrder(ss []string) []string {
	capacity := 16
	for len(ss) > capacity*3/4 {
		capacity <<= 1
	}
	return javaBucketOrder(ss, capacity)
}
