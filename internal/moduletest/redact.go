package moduletest

import (
	"sort"
	"strings"
)

// redacted replaces every secret in what a report shows.
const redacted = "[redacted]"

// redactor replaces exact occurrences of the run's secrets. The Python
// harness redacts what the module printed, logged, raised and returned
// before it reports a result, and only that, so the harness's own words and
// keys stay intact whatever the secret is. This redactor covers what the
// module wrote to its file descriptors directly and the harness's failure
// text.
// NOTE: only exact occurrences are found; a module that prints a secret
// transformed (reversed, encoded) is beyond reach.
type redactor struct {
	secrets  []string
	replacer *strings.Replacer
}

func newRedactor(secrets []string) *redactor {
	seen := map[string]bool{}
	var list []string
	for _, s := range secrets {
		if s != "" && !seen[s] {
			seen[s] = true
			list = append(list, s)
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s, redacted)
	}
	return &redactor{secrets: list, replacer: strings.NewReplacer(pairs...)}
}

// String replaces every secret in one pass, so the marker that replaced
// one secret is never rewritten by a shorter secret ("a" in "[redacted]").
func (r *redactor) String(s string) string {
	if len(r.secrets) == 0 {
		return s
	}
	return r.replacer.Replace(s)
}

// Truncated redacts text that was cut at a size limit: a secret cut in two
// at the end leaves a prefix of itself, which is redacted as well.
func (r *redactor) Truncated(s string) string {
	s = r.String(s)
	if strings.HasSuffix(s, redacted) {
		return s
	}
	for _, secret := range r.secrets {
		for k := len(secret) - 1; k > 0; k-- {
			if strings.HasSuffix(s, secret[:k]) {
				return s[:len(s)-k] + redacted
			}
		}
	}
	return s
}
