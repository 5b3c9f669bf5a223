module github.com/graftcert/graftcert

go 1.26.8

require (
	gonum.org/v1/gonum v0.17.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
