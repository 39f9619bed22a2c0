package modules

import (
	"testing"
)

// FuzzParseState feeds arbitrary bytes to the state.json reader: it must
// never panic, and whatever it accepts must encode and parse again to the
// same receipts.
func FuzzParseState(f *testing.F) {
	seeds := []string{
		`{"format": 1, "modules": {}}`,
		`{"format": 1, "modules": {"my_auth": {"name": "my_auth", "sha256": "206115b0afb3936143a82df9ca8f802e11a03ac9781e0ca765c7c9ec0755a0f5", "source": "/tmp/my_auth.py", "installed_at": "2026-01-02T03:04:05Z", "installed_by": "root", "enabled": true, "enabled_at": "2026-01-02T03:04:05Z", "skipped_validation": false}}, "loaded_changes": {"my_auth": "2026-01-02T03:04:05Z"}, "last_restart": "2026-01-01T00:00:00Z", "validations": [{"name": "my_auth", "sha256": "206115b0afb3936143a82df9ca8f802e11a03ac9781e0ca765c7c9ec0755a0f5", "python": "3.6.8", "validator_version": 1, "status": "pass", "checked_at": "2026-01-02T03:04:05Z"}]}`,
		`{"format": 2, "modules": {}}`,
		`{"modules": {}}`,
		`{"format": 1, "modules": {"../../etc/passwd": {"name": "../../etc/passwd", "sha256": "206115b0afb3936143a82df9ca8f802e11a03ac9781e0ca765c7c9ec0755a0f5"}}}`,
		`{"format": 1, "modules": {"a": {"name": "b", "sha256": "x"}}}`,
		`{"format": 1, "modules": {"a": null}}`,
		`{"format": "1"}`,
		`{"format": 1} {"format": 1}`,
		`{"format": 1, "modules": {"my_auth": {"name": "my_auth", "sha256": "ZZ"}}`,
		``,
		`null`,
		`[]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseState("state.json", data)
		if err != nil {
			if doc != nil {
				t.Fatalf("parseState returned a document and an error")
			}
			return
		}
		for key, r := range doc.Modules {
			if !isSafeFileStem(key) || !isSHA256(r.SHA256) {
				t.Fatalf("accepted an unsafe receipt %q: %+v", key, r)
			}
		}
		encoded, err := doc.encode()
		if err != nil {
			t.Fatalf("encode accepted state: %v", err)
		}
		again, err := parseState("state.json", encoded)
		if err != nil {
			t.Fatalf("re-parse of encoded state: %v\n%s", err, encoded)
		}
		if !sameReceipts(doc.receipts(), again.receipts()) {
			t.Fatalf("receipts changed in a round trip:\n%+v\n%+v", doc.receipts(), again.receipts())
		}
	})
}

func TestParseStateReportsPosition(t *testing.T) {
	_, err := parseState("state.json", []byte("{\n  \"format\": 1,\n  \"modules\": {,}\n}"))
	if err == nil {
		t.Fatal("parseState accepted broken JSON")
	}
	if got := err.Error(); got != `state.json: is not valid JSON: invalid character ',' looking for beginning of object key string (line 3, column 15)` {
		t.Errorf("error = %q", got)
	}
}
