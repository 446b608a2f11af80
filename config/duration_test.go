package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type timeKeys struct {
	Timeout  Duration[Seconds]      `toml:"timeout"`
	Kafka    Duration[Milliseconds] `toml:"kafka_timeout"`
	Rotation Duration[Minutes]      `toml:"file_rotation_time"`
	Flush    time.Duration          `toml:"flush_interval"`
}

func defaultTimeKeys() timeKeys {
	return timeKeys{Timeout: Count[Seconds](3600), Kafka: Count[Milliseconds](60000), Flush: time.Second}
}

func TestDurationKeysTakeIntegersInTheirUnitAndDurationStrings(t *testing.T) {
	for _, tt := range []struct {
		src                string
		timeout, kafka, rt time.Duration
	}{
		{"", time.Hour, time.Minute, 0},
		{"timeout = 30\nkafka_timeout = 1500\nfile_rotation_time = 2\n", 30 * time.Second, 1500 * time.Millisecond, 2 * time.Minute},
		{"timeout = \"90s\"\nkafka_timeout = \"1m\"\nfile_rotation_time = \"1h\"\n", 90 * time.Second, time.Minute, time.Hour},
		{"timeout = 0\n", 0, time.Minute, 0},
		{"timeout = 9223372036\n", 9223372036 * time.Second, time.Minute, 0},
	} {
		f, err := Parse("c.toml", "[input]\n"+tt.src)
		if err != nil {
			t.Fatal(err)
		}
		k := defaultTimeKeys()
		if err := f.Inputs[0].Decode(&k); err != nil {
			t.Fatalf("%q: Decode = %v", tt.src, err)
		}
		if k.Timeout.Get() != tt.timeout || k.Kafka.Get() != tt.kafka || k.Rotation.Get() != tt.rt {
			t.Errorf("%q: got timeout %v, kafka_timeout %v, file_rotation_time %v; want %v, %v, %v",
				tt.src, k.Timeout.Get(), k.Kafka.Get(), k.Rotation.Get(), tt.timeout, tt.kafka, tt.rt)
		}
	}
}

func TestDurationOverflowIsAnErrorNamingKeyAndLine(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		// 18446744074 s wraps around to 290 ms when multiplied in int64.
		{"[input]\ntype = \"tcp\"\ntimeout = 18446744074\n", "c.toml:3: input.timeout: 18446744074 seconds is out of range: at most 9223372036 (292 years)"},
		{"[input]\n\nkafka_timeout = 9223372036855\n", "c.toml:3: input.kafka_timeout: 9223372036855 milliseconds is out of range"},
		{"[input]\nfile_rotation_time = -153722867281\n", "c.toml:2: input.file_rotation_time: -153722867281 minutes is out of range"},
		{"[input]\ntimeout = \"3000000h\"\n", "c.toml:2: input.timeout: invalid duration \"3000000h\""},
		{"[input]\ntimeout = \"soon\"\n", "c.toml:2: input.timeout: invalid duration \"soon\": want a number of seconds or a duration such as \"90s\""},
		{"[input]\ntimeout = 1.5\n", "c.toml:2: input.timeout: wrong type: expected an integer number of seconds or a duration string such as \"30s\", got a float"},
		{"[input]\ntimeout = true\n", "got a boolean"},
	} {
		f, err := Parse("c.toml", tt.src)
		if err != nil {
			t.Fatal(err)
		}
		k := defaultTimeKeys()
		err = f.Inputs[0].Decode(&k)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: Decode = %v; want an *Error containing %q", tt.src, err, tt.want)
		}
	}
}

func TestDurationErrorInInputArrayNamesItsOwnLine(t *testing.T) {
	src := "[[input]]\ntype = \"tcp\"\ntimeout = 10\n[[input]]\ntype = \"tls\"\ntimeout = 18446744074\n"
	f, err := Parse("c.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	k := defaultTimeKeys()
	if err := f.Inputs[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	k = defaultTimeKeys()
	err = f.Inputs[1].Decode(&k)
	if err == nil || !strings.HasPrefix(err.Error(), "c.toml:6: input[1].timeout: ") {
		t.Errorf("Decode = %v; want the error at line 6, input[1].timeout", err)
	}
}

func TestBareIntegerForAGoDurationKeyIsRefused(t *testing.T) {
	// BurntSushi/toml reads an integer into a time.Duration as nanoseconds.
	f, _ := Parse("c.toml", "[input]\nflush_interval = 30\n")
	k := defaultTimeKeys()
	err := f.Inputs[0].Decode(&k)
	if err == nil || !strings.Contains(err.Error(), `c.toml:2: input.flush_interval: 30 is not a duration: write it with its unit, such as "30s"`) {
		t.Errorf("Decode = %v; want a refusal of the bare integer", err)
	}
	f, _ = Parse("c.toml", "[input]\nflush_interval = 0\n")
	k = defaultTimeKeys()
	if err := f.Inputs[0].Decode(&k); err != nil || k.Flush != 0 {
		t.Errorf("flush_interval = 0: Decode = %v, value %v; want 0 accepted", err, k.Flush)
	}
}

func TestEffectiveShowsDurationsAsWritten(t *testing.T) {
	f, _ := Parse("c.toml", "[input]\ntimeout = \"90s\"\nkafka_timeout = 250\n")
	k := defaultTimeKeys()
	if err := f.Inputs[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	eff, err := f.Inputs[0].Effective()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`timeout = "90s"`, "kafka_timeout = 250", "file_rotation_time = 0", `flush_interval = "1s"`} {
		if !strings.Contains(eff, want) {
			t.Errorf("Effective() lacks %s:\n%s", want, eff)
		}
	}
	// What check prints must load again with the same values.
	g, err := Parse("e.toml", eff)
	if err != nil {
		t.Fatalf("Effective() is not valid TOML: %v\n%s", err, eff)
	}
	k2 := defaultTimeKeys()
	if err := g.Inputs[0].Decode(&k2); err != nil || k2.Timeout.Get() != k.Timeout.Get() || k2.Kafka.Get() != k.Kafka.Get() {
		t.Errorf("Effective() read back: %v, %+v; want %+v", err, k2, k)
	}
}
