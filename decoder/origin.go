package decoder

import (
	"net/netip"

	"github.com/flowgo/flowgo"
)

// Origin says where the frame being decoded came from. A decoder asks only
// when the frame itself does not say (an RFC 3164 frame without a header
// names no host), so an input can look the sender up only then.
type Origin interface {
	// PeerAddr returns the sender's IP address, or the zero Addr when the
	// frame did not come over the network (stdin, a file).
	PeerAddr() netip.Addr
}

// OriginDecoder is a Decoder that can use the frame's Origin: RFC3164, and
// Auto for the frames it hands to RFC3164. Network inputs call DecodeFrom
// with themselves (or their connection) as the Origin; Decode is DecodeFrom
// without one.
type OriginDecoder interface {
	Decoder
	// DecodeFrom is Decode for a frame that came from o; o may be nil.
	// Calling o must not allocate: it happens on the hot path.
	DecodeFrom(frame []byte, o Origin, r *flowgo.Record, a *flowgo.Arena) error
}

// appendPeer returns the address of o's sender as text in arena memory:
// the IP address without port or zone, IPv4 senders on a dual-stack socket
// as IPv4. It is "" when o is nil or knows no sender.
func appendPeer(o Origin, a *flowgo.Arena) string {
	if o == nil {
		return ""
	}
	addr := o.PeerAddr()
	if !addr.IsValid() {
		return ""
	}
	var buf [48]byte
	return flowgo.UnsafeString(a.Copy(addr.Unmap().WithZone("").AppendTo(buf[:0])))
}
