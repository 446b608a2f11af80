package registry

import "testing"

func TestRegistry(t *testing.T) {
	r := New[int]("test type")
	r.Register("tcp", 1, "syslog-tcp")
	r.Register("udp", 2)
	if v, canon, err := r.Lookup("syslog-tcp"); err != nil || v != 1 || canon != "tcp" {
		t.Errorf("Lookup(alias) = %v, %q, %v", v, canon, err)
	}
	if _, _, err := r.Lookup("tpc"); err == nil || err.Error() != `test type "tpc" unknown (known: syslog-tcp, tcp, udp)` {
		t.Errorf("Lookup(unknown) = %v", err)
	}
	for _, name := range []string{"tcp", "syslog-tcp", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) again did not panic", name)
				}
			}()
			r.Register(name, 3)
		}()
	}
}
