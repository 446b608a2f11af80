// Package encodertest checks that an encoder.Encoder keeps the rules every
// encoder must keep, whatever its format: it appends to dst without
// touching what dst already holds, it neither changes nor keeps the record,
// its output shares no memory with the record, it is deterministic and safe
// for concurrent use, and a failed Encode leaves dst as it was. Validators
// (ValidGELF, ValidRFC5424, ValidLTSV) check the output of one format.
package encodertest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/flowgo/flowgo"
)

// Encoder is encoder.Encoder, repeated here so that package encoder's own
// tests can use this package without an import cycle.
type Encoder interface {
	Encode(dst []byte, r *flowgo.Record) ([]byte, error)
}

// Run checks enc against the rules with each of records, and each output
// against every validator in valid, reporting each broken rule as a test
// error. enc's output must depend on the record only, so give it a fixed
// clock if it reads one (prepend timestamps, records without a time).
func Run(t *testing.T, enc Encoder, records []flowgo.Record, valid ...func([]byte) error) {
	t.Helper()
	for _, err := range Check(enc, records, valid...) {
		t.Error(err)
	}
}

// Check does the checks of Run and returns the rules broken.
func Check(enc Encoder, records []flowgo.Record, valid ...func([]byte) error) []error {
	var errs []error
	outs := make([][]byte, len(records))
	for i := range records {
		var recErrs []error
		outs[i], recErrs = check(enc, &records[i], valid)
		for _, err := range recErrs {
			errs = append(errs, fmt.Errorf("record %d: %w", i, err))
		}
	}
	// Encode is safe for concurrent use: run the records from several
	// goroutines (go test -race sees shared state) and compare.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			var dst []byte
			for i := range records {
				var err error
				dst, err = enc.Encode(dst[:0], &records[i])
				if err == nil && outs[i] != nil && !bytes.Equal(dst, outs[i]) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("record %d encoded concurrently = %q; want %q", i, dst, outs[i]))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// check runs the rules for one record and returns its encoding (nil when
// Encode fails) and the rules broken.
func check(enc Encoder, orig *flowgo.Record, valid []func([]byte) error) ([]byte, []error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	mem, r := Copy(orig)
	snapshot := r.Clone()
	prefix := []byte("prefix:")

	out, err := enc.Encode(nil, &r)
	if err != nil {
		got, err2 := enc.Encode(bytes.Clone(prefix), &r)
		if err2 == nil {
			fail("Encode failed with %v, then succeeded with %q: not deterministic", err, got)
		} else if !bytes.Equal(got, prefix) {
			fail("failed Encode(%q) returned dst %q; want it unchanged", prefix, got)
		}
		if !r.Equal(&snapshot) {
			fail("failed Encode changed the record")
		}
		return nil, errs
	}
	if !r.Equal(&snapshot) {
		fail("Encode changed the record")
	}
	if again, _ := enc.Encode(nil, &r); !bytes.Equal(again, out) {
		fail("Encode is not deterministic:\n%q\n%q", out, again)
	}

	// Appending: to a dst with spare capacity full of junk, and to a full
	// one that has to grow. Both keep the prefix and add exactly out.
	roomy := make([]byte, len(prefix), len(prefix)+len(out)+64)
	copy(roomy, prefix)
	for i := len(prefix); i < cap(roomy); i++ {
		roomy[:cap(roomy)][i] = 0xAA
	}
	full := bytes.Clone(prefix)[:len(prefix):len(prefix)]
	for _, dst := range [][]byte{roomy, full} {
		got, err := enc.Encode(dst, &r)
		if err != nil {
			fail("Encode(%q) = %v; it succeeded with an empty dst", prefix, err)
		} else if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], out) {
			fail("Encode(%q, cap %d) = %q; want the prefix then %q", prefix, cap(dst), got, out)
		}
	}

	// The output must not share memory with the record, and the encoder
	// must not keep the record: overwrite the record's memory, then encode
	// a fresh copy and expect the same bytes.
	kept := bytes.Clone(out)
	for i := range mem {
		mem[i] = 'X'
	}
	if !bytes.Equal(out, kept) {
		fail("the output changed when the record's memory was overwritten: it points into the record\n got %q\nwant %q", out, kept)
	}
	_, fresh := Copy(orig)
	if again, err := enc.Encode(nil, &fresh); err != nil || !bytes.Equal(again, kept) {
		fail("after the first record's memory was overwritten, Encode(same record) = %q, %v; want %q: the encoder keeps the record", again, err, kept)
	}

	for _, v := range valid {
		if err := v(kept); err != nil {
			fail("invalid output %q: %v", kept, err)
		}
	}
	return kept, errs
}

// Copy returns a deep copy of r whose strings all point into the returned
// byte slice, as a decoded record points into its arena. Overwriting the
// slice changes the copy's strings.
func Copy(r *flowgo.Record) ([]byte, flowgo.Record) {
	n := len(r.Hostname) + len(r.AppName) + len(r.ProcID) + len(r.MsgID) + len(r.Msg) + len(r.FullMsg)
	for _, e := range r.SD {
		n += len(e.ID)
		for _, p := range e.Params {
			n += len(p.Name) + len(p.Value.Str)
		}
	}
	mem := make([]byte, 0, n)
	str := func(s string) string {
		at := len(mem)
		mem = append(mem, s...)
		return flowgo.UnsafeString(mem[at:len(mem):len(mem)])
	}
	c := *r
	c.Hostname, c.AppName, c.ProcID, c.MsgID = str(r.Hostname), str(r.AppName), str(r.ProcID), str(r.MsgID)
	c.Msg, c.FullMsg = str(r.Msg), str(r.FullMsg)
	if r.SD != nil {
		c.SD = make([]flowgo.SDElement, len(r.SD))
		for i, e := range r.SD {
			c.SD[i].ID = str(e.ID)
			if e.Params != nil {
				c.SD[i].Params = make([]flowgo.Param, len(e.Params))
				for j, p := range e.Params {
					c.SD[i].Params[j] = flowgo.Param{Name: str(p.Name), Value: p.Value}
					c.SD[i].Params[j].Value.Str = str(p.Value.Str)
				}
			}
		}
	}
	return mem, c
}
