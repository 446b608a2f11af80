package input

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowgo/flowgo"
)

// An octet count 100 times max_message_size or more, with no line break
// after it to resume at, ends the stream: over TCP the connection is
// closed (TestAbortedConnectionsAreCounted in pipeline), on stdin the input
// stops with an error that says where, after rejecting the frame. The
// frames before it are delivered; none after it is swallowed unseen.
func TestStdinStopsWhereOctetCountingIsLost(t *testing.T) {
	tp, _, err := Lookup("stdin")
	if err != nil {
		t.Fatal(err)
	}
	in, err := tp.New(Config{Name: "input", Decoder: verbatim{}, Framing: flowgo.FramingSyslen, MaxMessageSize: 16,
		BatchRecords: 10, BatchBytes: 1 << 20, Workers: 1,
		Stdin: strings.NewReader("5 first9999999999 <13>1 x" + strings.Repeat("5 later", 10))})
	if err != nil {
		t.Fatal(err)
	}
	sink := &streamSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = in.Run(ctx, sink)
	if !errors.Is(err, ErrFramingLost) || !strings.Contains(err.Error(), "stdin stopped at byte 7") {
		t.Errorf("Run = %v; want ErrFramingLost at byte 7", err)
	}
	if got := sink.got(); len(got) != 1 || got[0] != "first" {
		t.Errorf("records %q; want first", got)
	}
	rj := sink.gotRejects()
	var fe *FrameError
	if len(rj) != 1 || rj[0].frame != "9999999999 <13>1" || !errors.As(rj[0].err, &fe) || !errors.Is(rj[0].err, ErrBadOctetCount) ||
		!strings.Contains(rj[0].err.Error(), "octet count 9999999999 is implausible") {
		t.Errorf("rejects %+v; want the frame's first 16 bytes with a bad octet count", rj)
	}
}
