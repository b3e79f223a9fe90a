package commits_test

import (
	"testing"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/fixtures"
)

// BenchmarkParsePush is one verified push of three commits: go-github parsing, bounding,
// risky-path matching against the default patterns.
func BenchmarkParsePush(b *testing.B) {
	d, _ := fixtures.GitHubDeliveryNamed("push.several")
	b.SetBytes(int64(len(d.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := commits.Parse("push", d.Body, t0, defaultPatterns); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePush2000Files is a push listing 2,000 files, every one matched.
func BenchmarkParsePush2000Files(b *testing.B) {
	body, _ := fixtures.GitHubPushWithFiles(2000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := commits.Parse("push", body, t0, defaultPatterns); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignature is the HMAC check of a 5.5 KB push.
func BenchmarkVerifySignature(b *testing.B) {
	d, _ := fixtures.GitHubDeliveryNamed("push.several")
	secret := []byte("It's a Secret to Everybody")
	sig := commits.Sign(secret, d.Body)
	b.SetBytes(int64(len(d.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := commits.VerifySignature(secret, sig, d.Body); err != nil {
			b.Fatal(err)
		}
	}
}
