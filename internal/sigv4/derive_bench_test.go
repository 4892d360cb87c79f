package sigv4

import "testing"

func BenchmarkDeriveKey(b *testing.B) {
	for b.Loop() {
		deriveKey(fuzzSecret, "20260314", fuzzRegion, "lambda")
	}
}
