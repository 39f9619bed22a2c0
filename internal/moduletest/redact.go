package moduletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// redacted replaces every secret in what a report shows.
const redacted = "[redacted]"

// redactor replaces exact occurrences of the run's secrets. The Python
// harness redacts too, before it truncates anything; this second pass covers
// what the module wrote to its file descriptors directly.
// NOTE: only exact occurrences are found; a module that prints a secret
// transformed (reversed, encoded) is beyond reach.
type redactor struct {
	secrets []string
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
	return &redactor{secrets: list}
}

func (r *redactor) String(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// Truncated redacts text that was cut at a size limit: a secret cut in two
// at the end leaves a prefix of itself, which is redacted as well.
func (r *redactor) Truncated(s string) string {
	s = r.String(s)
	for _, secret := range r.secrets {
		for k := len(secret) - 1; k > 0; k-- {
			if strings.HasSuffix(s, secret[:k]) {
				return s[:len(s)-k] + redacted
			}
		}
	}
	return s
}

// JSON redacts every string in a JSON document, keys included.
func (r *redactor) JSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode harness message: %w", err)
	}
	out, err := json.Marshal(r.value(doc))
	if err != nil {
		return nil, fmt.Errorf("encode harness message: %w", err)
	}
	return out, nil
}

func (r *redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []any:
		for i := range x {
			x[i] = r.value(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, item := range x {
			out[r.String(k)] = r.value(item)
		}
		return out
	}
	return v
}
