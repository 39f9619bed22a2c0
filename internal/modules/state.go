package modules

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

// stateFormat is the schema version of state.json. A file of a newer format
// is rejected rather than rewritten with fields lost.
const stateFormat = 1

// maxCachedValidations bounds the validation cache in state.json; the oldest
// results are dropped first.
const maxCachedValidations = 256

// Receipt records one module that cfyauth manages.
type Receipt struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	// Source is the origin of the bytes: a path, "stdin", a URL, or
	// "adopted:<path>" for a file taken under management in place.
	Source      string    `json:"source"`
	InstalledAt time.Time `json:"installed_at"`
	InstalledBy string    `json:"installed_by"`
	Enabled     bool      `json:"enabled"`
	// EnabledAt is when the module was last put into the loaded folder.
	EnabledAt         *time.Time `json:"enabled_at,omitempty"`
	SkippedValidation bool       `json:"skipped_validation"`
}

// CachedValidation is a stored validation result. It is valid only for the
// same module name, bytes, interpreter version and validator version (the
// name matters because a name can shadow a package).
type CachedValidation struct {
	Name             string         `json:"name"`
	SHA256           string         `json:"sha256"`
	Python           string         `json:"python"`
	PythonPath       string         `json:"python_path,omitempty"`
	ValidatorVersion int            `json:"validator_version"`
	Status           report.Status  `json:"status"`
	Checks           []report.Check `json:"checks,omitempty"`
	CheckedAt        time.Time      `json:"checked_at"`
}

// stateDoc is the content of state.json.
type stateDoc struct {
	Format  int                 `json:"format"`
	Modules map[string]*Receipt `json:"modules"`
	// LoadedChanges is when cfyauth last changed each name's file in the
	// loaded folder, for the offline restart-pending check.
	LoadedChanges map[string]time.Time `json:"loaded_changes,omitempty"`
	// LastRestart is the last restart of the REST service that cfyauth
	// recorded.
	LastRestart *time.Time `json:"last_restart,omitempty"`
	// LastRestartOutcome is the last restart cfyauth made and how the
	// health gate judged it, healthy or not.
	LastRestartOutcome *RestartOutcome    `json:"last_restart_outcome,omitempty"`
	Validations        []CachedValidation `json:"validations,omitempty"`
}

func newStateDoc() *stateDoc {
	return &stateDoc{Format: stateFormat, Modules: map[string]*Receipt{}, LoadedChanges: map[string]time.Time{}}
}

// StateError explains why state.json cannot be used.
type StateError struct {
	Path   string
	Reason string
}

func (e *StateError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Reason) }

// parseState decodes and checks state.json. Every receipt must name a valid
// file name and a sha256 in hex, so that nothing read from a hand-edited
// file can point a write outside the store.
func parseState(path string, data []byte) (*stateDoc, error) {
	doc := newStateDoc()
	doc.Format = 0
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(doc); err != nil {
		return nil, &StateError{Path: path, Reason: jsonErrorReason(data, err)}
	}
	if dec.More() {
		return nil, &StateError{Path: path, Reason: "has data after the JSON document"}
	}
	switch {
	case doc.Format == 0:
		return nil, &StateError{Path: path, Reason: `has no "format" field`}
	case doc.Format > stateFormat:
		return nil, &StateError{Path: path, Reason: fmt.Sprintf("has format %d, written by a newer cfyauth (this one reads format %d)", doc.Format, stateFormat)}
	case doc.Format < 0:
		return nil, &StateError{Path: path, Reason: fmt.Sprintf("has an invalid format %d", doc.Format)}
	}
	if doc.Modules == nil {
		doc.Modules = map[string]*Receipt{}
	}
	if doc.LoadedChanges == nil {
		doc.LoadedChanges = map[string]time.Time{}
	}
	for key, r := range doc.Modules {
		if err := checkReceipt(key, r); err != nil {
			return nil, &StateError{Path: path, Reason: err.Error()}
		}
	}
	for i, v := range doc.Validations {
		if !isSHA256(v.SHA256) {
			return nil, &StateError{Path: path, Reason: fmt.Sprintf("validation %d has an invalid sha256 %q", i, v.SHA256)}
		}
	}
	return doc, nil
}

// checkReceipt checks one receipt of state.json or of a journal snapshot.
func checkReceipt(key string, r *Receipt) error {
	switch {
	case r == nil:
		return fmt.Errorf("module %q has an empty receipt", key)
	case r.Name != key:
		return fmt.Errorf("module %q has a receipt named %q", key, r.Name)
	case ValidateName(key) != nil && !isSafeFileStem(key):
		return fmt.Errorf("module %q is not a valid module name", key)
	case !isSHA256(r.SHA256):
		return fmt.Errorf("module %q has an invalid sha256 %q", key, r.SHA256)
	}
	return nil
}

// isSafeFileStem reports whether name can be used as "<name>.py" inside one
// folder: not empty, no path separator, no leading dot, no NUL. Receipts only
// need this, because a name valid when installed may fail ValidateName later,
// for example when the standard-library list grows.
func isSafeFileStem(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, "/\x00") && len(name) <= 255-len(".py")
}

func isSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// jsonErrorReason turns a decoding error into a message with the line and
// column of the fault.
func jsonErrorReason(data []byte, err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		// Offset counts the offending byte itself.
		line, col := lineCol(data, max(syntax.Offset-1, 0))
		return fmt.Sprintf("is not valid JSON: %v (line %d, column %d)", syntax, line, col)
	case errors.As(err, &typeErr):
		line, col := lineCol(data, typeErr.Offset)
		return fmt.Sprintf("has a value of the wrong type for %q (line %d, column %d)", typeErr.Field, line, col)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "is empty or cut short"
	}
	return "is not valid JSON: " + err.Error()
}

func lineCol(data []byte, offset int64) (int, int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// encode renders state.json with sorted keys and a final newline.
func (d *stateDoc) encode() ([]byte, error) {
	sort.SliceStable(d.Validations, func(i, j int) bool {
		return d.Validations[i].CheckedAt.Before(d.Validations[j].CheckedAt)
	})
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return append(data, '\n'), nil
}

// receipts returns a deep copy of the receipts.
func (d *stateDoc) receipts() map[string]Receipt {
	out := make(map[string]Receipt, len(d.Modules))
	for k, r := range d.Modules {
		out[k] = r.clone()
	}
	return out
}

func (r *Receipt) clone() Receipt {
	c := *r
	if r.EnabledAt != nil {
		t := *r.EnabledAt
		c.EnabledAt = &t
	}
	return c
}

// cachedValidation returns the newest cached result for the name and bytes,
// for the given interpreter version ("" matches any) and the current
// validator.
func (d *stateDoc) cachedValidation(name, sha, python string) *CachedValidation {
	var best *CachedValidation
	for i := range d.Validations {
		v := &d.Validations[i]
		if v.Name != name || v.SHA256 != sha || v.ValidatorVersion != ValidatorVersion || (python != "" && v.Python != python) {
			continue
		}
		if best == nil || v.CheckedAt.After(best.CheckedAt) {
			best = v
		}
	}
	return best
}

// putValidation stores a result, replacing one for the same key, and drops
// the oldest results beyond the cache bound.
func (d *stateDoc) putValidation(v CachedValidation) {
	kept := d.Validations[:0]
	for _, old := range d.Validations {
		if old.Name == v.Name && old.SHA256 == v.SHA256 && old.Python == v.Python && old.ValidatorVersion == v.ValidatorVersion {
			continue
		}
		kept = append(kept, old)
	}
	d.Validations = append(kept, v)
	if len(d.Validations) > maxCachedValidations {
		sort.SliceStable(d.Validations, func(i, j int) bool {
			return d.Validations[i].CheckedAt.Before(d.Validations[j].CheckedAt)
		})
		d.Validations = d.Validations[len(d.Validations)-maxCachedValidations:]
	}
}
