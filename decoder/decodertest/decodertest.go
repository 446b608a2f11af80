// Package decodertest checks that a decoder.Decoder keeps the rules every
// decoder must keep, whatever its format: it does not hold on to the frame,
// it rejects rather than panics, its errors are *decoder.Error, and it is
// deterministic. Run it from each decoder's tests with that format's samples.
package decodertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/flowgo/flowgo"
	"github.com/flowgo/flowgo/decoder"
)

// Run checks dec against the rules, using good frames (which dec must
// accept) and bad ones (which it must reject).
func Run(t *testing.T, dec decoder.Decoder, good, bad [][]byte) {
	t.Helper()
	for _, in := range [][]byte{nil, {}, []byte(" "), {0}} {
		var r flowgo.Record
		r.Reset()
		err := dec.Decode(in, &r, new(flowgo.Arena))
		if err == nil {
			t.Errorf("Decode(%q) accepted a frame with no content", in)
		} else if !isDecodeError(err) {
			t.Errorf("Decode(%q) error %T %v; want *decoder.Error", in, err, err)
		}
	}
	for _, in := range bad {
		var r flowgo.Record
		r.Reset()
		err := dec.Decode(bytes.Clone(in), &r, new(flowgo.Arena))
		if err == nil {
			t.Errorf("Decode(%q) = nil error; want a rejection", in)
		} else if !isDecodeError(err) {
			t.Errorf("Decode(%q) error %T %v; want *decoder.Error", in, err, err)
		}
	}
	for _, in := range good {
		frame := bytes.Clone(in)
		var r1 flowgo.Record
		r1.Reset()
		a := new(flowgo.Arena)
		if err := dec.Decode(frame, &r1, a); err != nil {
			t.Errorf("Decode(%q) = %v; want success", in, err)
			continue
		}
		snapshot := r1.Clone()
		// The frame belongs to the caller once Decode returns: scribble on it.
		for i := range frame {
			frame[i] = 'X'
		}
		if !r1.Equal(&snapshot) {
			t.Errorf("Decode(%q): the record changed when the frame was overwritten: the decoder keeps the frame\n got %s\nwant %s", in, Dump(&r1), Dump(&snapshot))
		}
		var r2 flowgo.Record
		r2.Reset()
		if err := dec.Decode(bytes.Clone(in), &r2, new(flowgo.Arena)); err != nil {
			t.Errorf("second Decode(%q) = %v", in, err)
			continue
		}
		if !r1.Time.IsZero() && !r2.Time.IsZero() && !bytes.Contains(in, []byte(r1.Time.UTC().Format("2006"))) {
			// A receive-time timestamp differs between calls; compare the rest.
			r2.Time = r1.Time
		}
		if !r1.Equal(&r2) {
			t.Errorf("Decode(%q) is not deterministic:\n%s\n%s", in, Dump(&r1), Dump(&r2))
		}
	}
}

func isDecodeError(err error) bool {
	var de *decoder.Error
	return errors.As(err, &de)
}

// Dump renders r as indented JSON for test messages and golden files, with
// values tagged by kind so that 1 (u64) and 1 (i64) and "1" differ.
func Dump(r *flowgo.Record) string {
	type param struct {
		Name  string `json:"name"`
		Kind  string `json:"kind"`
		Value any    `json:"value"`
	}
	type elem struct {
		ID     string  `json:"id"`
		Params []param `json:"params"`
	}
	out := struct {
		Time     string `json:"time"`
		Hostname string `json:"hostname"`
		AppName  string `json:"appname"`
		ProcID   string `json:"procid"`
		MsgID    string `json:"msgid"`
		Msg      string `json:"msg"`
		FullMsg  string `json:"full_msg"`
		Facility int    `json:"facility"`
		Severity int    `json:"severity"`
		SD       []elem `json:"sd"`
	}{
		Hostname: r.Hostname, AppName: r.AppName, ProcID: r.ProcID, MsgID: r.MsgID,
		Msg: r.Msg, FullMsg: r.FullMsg, Facility: int(r.Facility), Severity: int(r.Severity),
	}
	if !r.Time.IsZero() {
		out.Time = r.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	if r.Facility == flowgo.Unset {
		out.Facility = -1
	}
	if r.Severity == flowgo.Unset {
		out.Severity = -1
	}
	for _, e := range r.SD {
		el := elem{ID: e.ID, Params: []param{}}
		for _, p := range e.Params {
			var v any
			switch p.Value.Kind {
			case flowgo.KindString:
				v = p.Value.Str
			case flowgo.KindBool:
				v = p.Value.Bool()
			case flowgo.KindF64:
				v = p.Value.F64()
				if f := p.Value.F64(); f != f || f > 1.7e308 || f < -1.7e308 {
					v = "non-finite"
				}
			case flowgo.KindI64:
				v = p.Value.I64()
			case flowgo.KindU64:
				v = p.Value.U64()
			}
			el.Params = append(el.Params, param{Name: p.Name, Kind: p.Value.Kind.String(), Value: v})
		}
		out.SD = append(out.SD, el)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// Expect decodes in with dec into a fresh record and fails t unless that
// succeeds and gives want.
func Expect(t *testing.T, dec decoder.Decoder, in string, want *flowgo.Record) {
	t.Helper()
	var got flowgo.Record
	got.Reset()
	if err := dec.Decode([]byte(in), &got, new(flowgo.Arena)); err != nil {
		t.Fatalf("Decode(%q) = %v; want success", in, err)
	}
	if !got.Equal(want) {
		t.Errorf("Decode(%q) =\n%s\nwant\n%s", in, Dump(&got), Dump(want))
	}
}
