module github.com/flowgo/flowgo

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/influxdata/go-syslog/v3 v3.0.0
	github.com/klauspost/compress v1.20.4
)

require github.com/stretchr/testify v1.8.0 // indirect
