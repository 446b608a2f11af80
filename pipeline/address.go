package pipeline

import "net"

// collide reports whether two inputs, listening on network (tcp, udp; ""
// for none) at address, cannot both bind: the checks within a pipeline
// (plan.go) and across the group's pipelines (group.go) share it.
func collide(networkA, addressA, networkB, addressB string) bool {
	return networkA != "" && networkA == networkB && sameAddress(addressA, addressB)
}

// sameAddress reports whether binding both a and b would collide: the same
// port on the same host, or on any host when either binds every address.
// Port 0 (any free port) never collides.
func sameAddress(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return a == b
	}
	if pa != pb || pa == "0" {
		return false
	}
	return ha == hb || unspecified(ha) || unspecified(hb)
}

func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
