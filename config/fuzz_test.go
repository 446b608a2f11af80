package config

import (
	"testing"
)

// FuzzTimeAndModeValues feeds any TOML value to a time key of each unit
// and to a mode key: no panic, and a value that decodes prints (as flowgo
// check shows it) to TOML that decodes to the same value.
func FuzzTimeAndModeValues(f *testing.F) {
	for _, s := range []string{"3600", `"90s"`, "18446744074", "-1", `"1h30m"`, "1.5", `"0640"`, "0o640", "640", `"3000000h"`, "true", "9223372036854775807", `"1.5us"`} {
		f.Add(s)
	}
	type keys struct {
		Timeout Duration[Seconds]      `toml:"timeout"`
		Kafka   Duration[Milliseconds] `toml:"kafka_timeout"`
		Rot     Duration[Minutes]      `toml:"file_rotation_time"`
		Mode    FileMode               `toml:"file_mode"`
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, key := range []string{"timeout", "kafka_timeout", "file_rotation_time", "file_mode"} {
			file, err := Parse("f.toml", "[output]\n"+key+" = "+v+"\n")
			if err != nil {
				return
			}
			k := keys{Mode: Mode(0o640)}
			if file.Output.Decode(&k) != nil {
				continue
			}
			eff, err := file.Output.Effective()
			if err != nil {
				t.Fatalf("%s = %s: Effective: %v", key, v, err)
			}
			g, err := Parse("e.toml", eff)
			if err != nil {
				t.Fatalf("%s = %s: Effective() is not TOML: %v\n%s", key, v, err, eff)
			}
			k2 := keys{Mode: Mode(0o640)}
			if err := g.Output.Decode(&k2); err != nil || k2.Timeout.Get() != k.Timeout.Get() || k2.Kafka.Get() != k.Kafka.Get() ||
				k2.Rot.Get() != k.Rot.Get() || k2.Mode.Get() != k.Mode.Get() {
				t.Fatalf("%s = %s: read back %+v, %v; want %+v\n%s", key, v, k2, err, k, eff)
			}
		}
	})
}
