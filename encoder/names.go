package encoder

import "github.com/flowgo/flowgo"

// nameRules say how a format writes param names: GELF sanitises them to
// field names, LTSV escapes them to labels. Two params clash when they are
// written the same.
type nameRules struct {
	hash  func(name string) uint64             // equal for names written the same
	same  func(a, b string) bool               // written the same
	write func(dst []byte, name string) []byte // the written name
}

// fnvOffset and fnvPrime are the 64-bit FNV-1a constants, for the hashes.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashCap is the most params for which nameIndex keeps hashes, the highest
// value smallParams may take.
const hashCap = 64

// nameIndex finds the params of a record that are written with the same
// name, so that an encoder can write only the last. For small records it
// keeps a hash of each written name, so that most comparisons are of two
// integers; above smallParams it maps each written name to its last param.
// It lives on the stack of Encode: the map is its only allocation.
type nameIndex struct {
	rules *nameRules
	sd    []flowgo.SDElement
	n     int
	hash  [hashCap]uint64
	seen  map[string]int
}

func (x *nameIndex) init(sd []flowgo.SDElement, rules *nameRules) {
	x.rules, x.sd, x.n = rules, sd, paramCount(sd)
	if x.n > min(smallParams, hashCap) {
		x.seen = make(map[string]int, x.n)
		var buf []byte
		k := 0
		for i := range sd {
			for j := range sd[i].Params {
				buf = rules.write(buf[:0], sd[i].Params[j].Name)
				x.seen[string(buf)] = k
				k++
			}
		}
		return
	}
	k := 0
	for i := range sd {
		for j := range sd[i].Params {
			x.hash[k] = rules.hash(sd[i].Params[j].Name)
			k++
		}
	}
}

// hashOf returns the hash of the k-th param, named name.
func (x *nameIndex) hashOf(k int, name string) uint64 {
	if x.seen != nil {
		return x.rules.hash(name)
	}
	return x.hash[k]
}

// name returns the name of the k-th param.
func (x *nameIndex) name(k int) string {
	for i := range x.sd {
		ps := x.sd[i].Params
		if k < len(ps) {
			return ps[k].Name
		}
		k -= len(ps)
	}
	return ""
}

// has reports whether a param is written as name, whose hash is h.
func (x *nameIndex) has(name string, h uint64) bool {
	if x.seen != nil {
		_, ok := x.seen[name]
		return ok
	}
	for k := range x.n {
		if x.hash[k] == h && x.rules.same(x.name(k), name) {
			return true
		}
	}
	return false
}

// later reports whether a param after the k-th, named name, is written
// the same.
func (x *nameIndex) later(k int, name string) bool {
	if x.seen != nil {
		var buf [64]byte
		return x.seen[string(x.rules.write(buf[:0], name))] != k
	}
	for m := k + 1; m < x.n; m++ {
		if x.hash[m] == x.hash[k] && x.rules.same(x.name(m), name) {
			return true
		}
	}
	return false
}
