module github.com/hostless/hostless/sdk/go

go 1.24
