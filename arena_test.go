package flowgo

import (
	"bytes"
	"testing"
)

func TestArenaCopiesSurviveLaterAllocations(t *testing.T) {
	var a Arena
	var kept []string
	var want []string
	for i := range 5000 {
		s := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%300)
		kept = append(kept, a.String(s))
		want = append(want, string(s))
	}
	for i := range kept {
		if kept[i] != want[i] {
			t.Fatalf("string %d changed after later allocations: got %q; want %q", i, kept[i][:min(10, len(kept[i]))], want[i][:min(10, len(want[i]))])
		}
	}
}

func TestArenaSlicesDoNotOverlapOnAppend(t *testing.T) {
	var a Arena
	x := a.Copy([]byte("xx"))
	y := a.Copy([]byte("yy"))
	_ = append(x, 'Z') // capacity is capped: must reallocate, not write into y
	if string(y) != "yy" {
		t.Errorf("appending to one arena slice changed its neighbour: %q", y)
	}
	p := a.Params([]Param{{Name: "a"}})
	q := a.Params([]Param{{Name: "b"}})
	_ = append(p, Param{Name: "c"})
	if q[0].Name != "b" {
		t.Errorf("appending to one params slice changed its neighbour: %q", q[0].Name)
	}
}

func TestArenaLargeAllocation(t *testing.T) {
	var a Arena
	big := bytes.Repeat([]byte("z"), 3*arenaByteChunk)
	got := a.Copy(big)
	if !bytes.Equal(got, big) {
		t.Fatal("large copy differs")
	}
	if a.Size() < len(big) {
		t.Errorf("Size() = %d; want at least %d", a.Size(), len(big))
	}
	a.Reset()
	if a.Size() != 0 {
		t.Errorf("Size() after Reset = %d; want 0", a.Size())
	}
}

func TestArenaResetReusesChunks(t *testing.T) {
	var a Arena
	line := bytes.Repeat([]byte("x"), 250)
	fill := func() {
		for range 1000 {
			a.Copy(line)
			a.Params(make([]Param, 4))
			a.Elems(make([]SDElement, 1))
		}
		a.Reset()
	}
	fill() // warm up: the chunks exist now
	if n := testing.AllocsPerRun(20, fill); n > 0 {
		t.Errorf("a filled and reset arena allocates %v times per refill; want 0", n)
	}
}

func TestValueKinds(t *testing.T) {
	if v := BoolValue(true); v.Kind != KindBool || !v.Bool() {
		t.Errorf("BoolValue(true) = %+v", v)
	}
	if v := F64Value(-1.5); v.Kind != KindF64 || v.F64() != -1.5 {
		t.Errorf("F64Value(-1.5) = %+v", v)
	}
	if v := I64Value(-7); v.Kind != KindI64 || v.I64() != -7 {
		t.Errorf("I64Value(-7) = %+v", v)
	}
	if v := U64Value(1 << 63); v.Kind != KindU64 || v.U64() != 1<<63 {
		t.Errorf("U64Value(1<<63) = %+v", v)
	}
	if !NullValue().Equal(NullValue()) || NullValue().Equal(StringValue("")) {
		t.Error("null equality is wrong")
	}
	if I64Value(1).Equal(U64Value(1)) {
		t.Error("i64 1 and u64 1 compare equal; kinds must differ")
	}
}

func TestRecordCloneIsIndependent(t *testing.T) {
	var a Arena
	r := Record{Hostname: a.String([]byte("host")), SD: a.Elems([]SDElement{{ID: a.String([]byte("id@1")),
		Params: a.Params([]Param{{Name: a.String([]byte("k")), Value: StringValue(a.String([]byte("v")))}})}})}
	c := r.Clone()
	a.Reset()
	a.Copy(bytes.Repeat([]byte("#"), 1000)) // overwrite the recycled chunk
	if c.Hostname != "host" || c.SD[0].ID != "id@1" || c.SD[0].Params[0].Name != "k" || c.SD[0].Params[0].Value.Str != "v" {
		t.Errorf("clone changed when the arena was reused: %+v", c)
	}
}

// Pointers left behind in recycled params are zeroed when, and only when,
// the memory they point into is let go: a huge frame's oversized chunk must
// not stay reachable from a pooled batch.
func TestArenaResetZeroesPointersOnlyToReleasedChunks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    int
		wantZero bool
	}{
		{"standard chunks kept", 100, false},
		{"oversized chunk released", 4 * arenaByteChunk, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := GetBatch()
			defer PutBatch(b)
			r := b.Next()
			r.Msg = b.Arena.String(make([]byte, tc.frame))
			ps := b.Arena.Params([]Param{{Name: r.Msg[:1]}})
			b.Reset()
			if zeroed := ps[0].Name == ""; zeroed != tc.wantZero {
				t.Errorf("param zeroed = %v, want %v", zeroed, tc.wantZero)
			}
			if zeroed := b.Records[:1][0].Msg == ""; zeroed != tc.wantZero {
				t.Errorf("record zeroed = %v, want %v", zeroed, tc.wantZero)
			}
		})
	}
}
