package power

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/headnode/headnode/power/board"
	"github.com/headnode/headnode/power/nodename"
)

// Ordered is a board with a place in global numbering (ClusterCTRL's
// order value).
type Ordered interface {
	board.Board
	Order() int
}

// Cluster is the boards of one head node with their nodes numbered as the
// official tool numbers them: the ClusterHAT's p1-p4 first, then each
// ClusterCTRL board's nodes by ascending order value. Where the tool
// refuses every command when two boards share an order value, the boards
// here are ordered by bus number and a warning names both buses.
type Cluster struct {
	boards   []board.Board
	first    []int // global number of each board's node 1
	total    int
	hat      board.Board
	ctrls    []Ordered
	Warnings []string
}

// NewCluster numbers the nodes of hat (nil for none) and ctrls.
func NewCluster(hat board.Board, ctrls []Ordered) *Cluster {
	c := &Cluster{hat: hat, ctrls: slices.Clone(ctrls)}
	ctrls = slices.Clone(ctrls)
	slices.SortStableFunc(ctrls, func(a, b Ordered) int {
		return cmp.Or(cmp.Compare(a.Order(), b.Order()), cmp.Compare(a.Info().Bus, b.Info().Bus))
	})
	for i := 1; i < len(ctrls); i++ {
		a, b := ctrls[i-1], ctrls[i]
		if a.Order() == b.Order() {
			c.Warnings = append(c.Warnings, fmt.Sprintf("ClusterCTRL boards on I2C buses %d and %d have the same order %d; numbered by bus (give one a new order with `clusterctrl setorder %d <new>` and `clusterctrl saveorder <new>`)", a.Info().Bus, b.Info().Bus, a.Order(), a.Order()))
		}
	}
	if hat != nil {
		c.add(hat)
	}
	for _, b := range ctrls {
		c.add(b)
	}
	return c
}

func (c *Cluster) add(b board.Board) {
	c.boards = append(c.boards, b)
	c.first = append(c.first, c.total+1)
	c.total += b.Nodes()
}

// renumbered numbers the same boards again, for when an order value
// changed; moved[i] is where board i is now.
func (c *Cluster) renumbered() (*Cluster, []int) {
	nc := NewCluster(c.hat, c.ctrls)
	moved := make([]int, len(c.boards))
	for i, b := range c.boards {
		moved[i] = slices.Index(nc.boards, b)
	}
	return nc, moved
}

// Nodes is the number of nodes with power control: p1..pNodes().
func (c *Cluster) Nodes() int { return c.total }

// Boards returns the boards in numbering order.
func (c *Cluster) Boards() []board.Board { return c.boards }

// First returns the global number of board i's node 1.
func (c *Cluster) First(i int) int { return c.first[i] }

// Locate returns the board of global node n and n's number on it.
func (c *Cluster) Locate(n int) (b int, local int, ok bool) {
	for i := range c.boards {
		if n >= c.first[i] && n < c.first[i]+c.boards[i].Nodes() {
			return i, n - c.first[i] + 1, true
		}
	}
	return 0, 0, false
}

// Range describes the valid node names, e.g. "p1-p4".
func (c *Cluster) Range() string { return nodename.Range(1, c.total) }

// InputError is a request that was refused as invalid; nothing changed.
type InputError = nodename.InputError

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// ParseNodes turns node names ("p1", "p3") into numbers, checking each
// against the board's range. None named means all of them.
func (c *Cluster) ParseNodes(names []string) ([]int, error) {
	if c.total == 0 {
		if len(names) == 0 {
			return nil, inputErrorf("no board with node power control was found")
		}
		return nil, inputErrorf("unknown node %q: no board with node power control was found", names[0])
	}
	if len(names) == 0 {
		out := make([]int, c.total)
		for i := range out {
			out[i] = i + 1
		}
		return out, nil
	}
	var out []int
	for _, name := range names {
		n, err := nodename.Parse(name)
		if err != nil {
			return nil, inputErrorf("%v; this board has %s", err, c.Range())
		}
		if n > c.total {
			return nil, inputErrorf("unknown node %q: this board has %s", name, c.Range())
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
