module example.com/hello

go 1.24

require github.com/hostless/hostless/sdk/go v0.0.0

replace github.com/hostless/hostless/sdk/go => ../../sdk/go
