package modules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
)

// ModuleState is the state of one module as list reports it.
type ModuleState string

const (
	// StateEnabled: managed, and its file in the loaded folder matches the receipt.
	StateEnabled ModuleState = "enabled"
	// StateDisabled: managed, kept in the store, absent from the loaded folder.
	StateDisabled ModuleState = "disabled"
	// StateUnmanaged: a file in the loaded folder that cfyauth did not place.
	StateUnmanaged ModuleState = "unmanaged"
	// StateModified: managed, but the loaded folder does not match the
	// receipt (other bytes, or a file while disabled).
	StateModified ModuleState = "modified"
	// StateMissing: enabled but its file is gone, or its stored copy is gone.
	StateMissing ModuleState = "missing"
	// StateBuiltin: a module of the premium package; never written.
	StateBuiltin ModuleState = "built-in"
)

// Module kinds. Only the premium package's own modules are ldap or okta.
const (
	KindCustom = "custom"
	KindLDAP   = "ldap"
	KindOKTA   = "okta"
)

// Restart-pending values: the offline check can also not know.
const (
	PendingYes     = "yes"
	PendingNo      = "no"
	PendingUnknown = "unknown"
)

// ModuleStatus describes one module for list and show.
type ModuleStatus struct {
	Name  string      `json:"name"`
	State ModuleState `json:"state"`
	Kind  string      `json:"kind"`
	// SHA256 is the receipt's hash, or the file's for unmanaged and
	// built-in modules.
	SHA256 string `json:"sha256,omitempty"`
	// FileSHA256 is the loaded file's hash when it differs from the receipt.
	FileSHA256 string `json:"file_sha256,omitempty"`
	// Validity is the cached validation status (pass, warn, fail), skipped
	// when installed with --skip-validation and never validated, unknown
	// when never validated, and empty for built-ins.
	Validity string `json:"validity,omitempty"`
	// RestartPending is yes, no or unknown; empty where it does not apply.
	RestartPending string `json:"restart_pending,omitempty"`
	// Active is set for built-ins whose activation cfyauth can see: OKTA is
	// active when its certificate file is in place.
	Active    *bool  `json:"active,omitempty"`
	Path      string `json:"path,omitempty"`
	StorePath string `json:"store_path,omitempty"`
	Note      string `json:"note,omitempty"`

	Receipt    *Receipt          `json:"receipt,omitempty"`
	Validation *CachedValidation `json:"validation,omitempty"`
}

// ListResult is the inventory of a manager's modules.
type ListResult struct {
	Modules        []ModuleStatus `json:"modules"`
	RestartPending string         `json:"restart_pending"`
	LastRestart    *time.Time     `json:"last_restart,omitempty"`
	// LastRestartOutcome is the last restart cfyauth made, healthy or not.
	LastRestartOutcome *RestartOutcome `json:"last_restart_outcome,omitempty"`
	LoadedDir          string          `json:"loaded_dir"`
	StateDir           string          `json:"state_dir"`
}

// List returns every module: managed ones, files placed by hand, and the
// premium package's built-ins. It reads files only and never runs Python.
func (tx *Tx) List() ListResult {
	res := ListResult{LoadedDir: tx.s.LoadedDir, StateDir: tx.s.StateDir, LastRestart: tx.state.LastRestart,
		LastRestartOutcome: tx.state.LastRestartOutcome}
	names := map[string]bool{}
	for n := range tx.state.Modules {
		names[n] = true
	}
	for n := range tx.loaded {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		res.Modules = append(res.Modules, tx.status(n))
	}
	res.Modules = append(res.Modules, tx.builtins()...)
	res.RestartPending = tx.restartPending(res.Modules)
	return res
}

// status describes one custom or unmanaged module by name.
func (tx *Tx) status(name string) ModuleStatus {
	rec := tx.state.Modules[name]
	cur := tx.loaded[name]
	st := ModuleStatus{Name: name, Kind: KindCustom, Path: filepath.Join(tx.s.LoadedDir, name+".py")}
	switch {
	case rec == nil:
		st.State = StateUnmanaged
		st.SHA256 = cur.File.SHA256
		st.Note = "placed in the loaded folder by hand; run '" + tx.s.command("adopt %s", name) + "' to manage it"
		switch {
		case !cur.Regular:
			st.Note = "not a regular file; cfyauth never replaces it"
		case ValidateName(name) != nil:
			st.Note = "placed in the loaded folder by hand, under a name that is not a valid module name; " + tx.renameHint(name)
		}
		st.Validity = tx.validity(name, cur.File.SHA256, false)
	default:
		st.SHA256 = rec.SHA256
		st.StorePath = tx.s.BlobPath(name, rec.SHA256)
		st.Validity = tx.validity(name, rec.SHA256, rec.SkippedValidation)
		stored := tx.s.hasBlob(name, rec.SHA256)
		switch {
		case cur == nil && rec.Enabled:
			st.State = StateMissing
			st.Note = "enabled, but its file is missing from the loaded folder; run '" + tx.s.command("enable %s", name) + "' to put it back"
		case cur == nil && !stored:
			st.State = StateMissing
			st.Note = "its stored copy is missing; install it again from its source"
		case cur == nil:
			st.State = StateDisabled
			st.Path = ""
		case !rec.Enabled:
			// Checked first: 'enable --force' would restore the file but
			// also enable a module that is meant to be disabled.
			st.State = StateModified
			if !cur.Regular || cur.File.SHA256 != rec.SHA256 {
				st.FileSHA256 = cur.File.SHA256
			}
			st.Note = "disabled, but a file of that name is in the loaded folder; run '" + tx.s.command("adopt %s", name) +
				"' to keep it, or '" + tx.s.command("disable %s --force", name) + "' to take it out"
		case !cur.Regular || cur.File.SHA256 != rec.SHA256:
			st.State = StateModified
			st.FileSHA256 = cur.File.SHA256
			st.Note = "the file in the loaded folder differs from what cfyauth installed; run '" + tx.s.command("adopt %s", name) +
				"' to keep it, or '" + tx.s.command("enable %s --force", name) + "' to restore the installed version"
		default:
			st.State = StateEnabled
			if !stored {
				st.Note = "its stored copy is missing, so rollback cannot restore this version"
			}
		}
	}
	st.RestartPending = tx.namePending(name, cur)
	return st
}

// validity reads the cached validation status without running Python.
func (tx *Tx) validity(name, sha string, skipped bool) string {
	if v := tx.state.cachedValidation(name, sha, ""); v != nil {
		return string(v.Status)
	}
	if skipped {
		return "skipped"
	}
	return "unknown"
}

// namePending compares the last change of a module's file with the last
// restart cfyauth recorded.
func (tx *Tx) namePending(name string, cur *loadedEntry) string {
	last := tx.state.LastRestart
	if last == nil {
		return PendingUnknown
	}
	changed := tx.state.LoadedChanges[name]
	if cur != nil && cur.Changed.After(changed) {
		changed = cur.Changed
	}
	if changed.After(*last) {
		return PendingYes
	}
	return PendingNo
}

func (tx *Tx) restartPending(mods []ModuleStatus) string {
	last := tx.state.LastRestart
	if last == nil {
		return PendingUnknown
	}
	for _, m := range mods {
		if m.RestartPending == PendingYes {
			return PendingYes
		}
	}
	// A module deleted from the loaded folder has no status of its own.
	for _, t := range tx.state.LoadedChanges {
		if t.After(*last) {
			return PendingYes
		}
	}
	return PendingNo
}

// builtins lists the premium package's LDAP and OKTA modules.
func (tx *Tx) builtins() []ModuleStatus {
	var out []ModuleStatus
	oktaCert, _ := tx.s.Layout.Path(manager.OktaCertificate)
	for _, dir := range tx.s.PremiumDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".py") || strings.HasPrefix(name, ".") {
				continue
			}
			stem := strings.TrimSuffix(name, ".py")
			kind := builtinKind(stem)
			if kind == "" {
				continue
			}
			st := ModuleStatus{Name: stem, State: StateBuiltin, Kind: kind, Path: filepath.Join(dir, name)}
			if sum, _, err := hashFile(st.Path); err == nil {
				st.SHA256 = sum
			}
			if kind == KindOKTA {
				active := false
				if info, err := os.Stat(oktaCert); err == nil && info.Mode().IsRegular() {
					active = true
					st.Note = "active: " + oktaCert + " is in place"
					st.RestartPending = tx.filePending(info)
				} else {
					st.Note = "inactive: no certificate at " + oktaCert
				}
				st.Active = &active
			} else {
				st.Note = "active when ldap_server is set in the manager's settings (cfyauth ldap show)"
			}
			out = append(out, st)
		}
	}
	return out
}

func (tx *Tx) filePending(info os.FileInfo) string {
	last := tx.state.LastRestart
	if last == nil {
		return PendingUnknown
	}
	changed := info.ModTime()
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		changed = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	if changed.After(*last) {
		return PendingYes
	}
	return PendingNo
}

// builtinKind returns the kind of a premium module that is an
// authenticator, or "" for its helpers (auth_base, __init__).
func builtinKind(stem string) string {
	switch {
	case strings.Contains(stem, "okta") || strings.Contains(stem, "saml"):
		return KindOKTA
	case strings.Contains(stem, "ldap"):
		return KindLDAP
	}
	return ""
}

// StoredVersion is one version of a module kept in the store.
type StoredVersion struct {
	SHA256   string    `json:"sha256"`
	Path     string    `json:"path"`
	StoredAt time.Time `json:"stored_at"`
	Current  bool      `json:"current"`
}

// ShowResult is one module in full.
type ShowResult struct {
	Module   ModuleStatus    `json:"module"`
	Versions []StoredVersion `json:"versions,omitempty"`
	History  []EntrySummary  `json:"history,omitempty"`
}

// Show describes one module with its receipt, cached checks, stored versions
// and the journal entries that touched it.
func (tx *Tx) Show(name string) (ShowResult, error) {
	var res ShowResult
	found := false
	if _, ok := tx.state.Modules[name]; ok {
		found = true
	} else if _, ok := tx.loaded[name]; ok {
		found = true
	}
	if found {
		res.Module = tx.status(name)
	} else {
		for _, b := range tx.builtins() {
			if b.Name == name {
				res.Module, found = b, true
				break
			}
		}
	}
	if !found {
		return res, tx.unknownModule(name, "show")
	}
	if rec := tx.state.Modules[name]; rec != nil {
		r := rec.clone()
		res.Module.Receipt = &r
		res.Module.Validation = tx.state.cachedValidation(name, rec.SHA256, "")
	} else if res.Module.SHA256 != "" {
		res.Module.Validation = tx.state.cachedValidation(name, res.Module.SHA256, "")
	}
	if isSafeFileStem(name) {
		res.Versions = tx.storedVersions(name)
	}
	history, err := tx.History(0)
	if err != nil {
		return res, err
	}
	for _, h := range history {
		for _, n := range h.Names {
			if n == name {
				res.History = append(res.History, h)
				break
			}
		}
	}
	return res, nil
}

func (tx *Tx) storedVersions(name string) []StoredVersion {
	entries, err := os.ReadDir(tx.s.blobDir(name))
	if err != nil {
		return nil
	}
	var current string
	if rec := tx.state.Modules[name]; rec != nil {
		current = rec.SHA256
	}
	var out []StoredVersion
	for _, e := range entries {
		sha := strings.TrimSuffix(e.Name(), ".py")
		if !e.Type().IsRegular() || !isSHA256(sha) {
			continue
		}
		v := StoredVersion{SHA256: sha, Path: filepath.Join(tx.s.blobDir(name), e.Name()), Current: sha == current}
		if info, err := e.Info(); err == nil {
			v.StoredAt = info.ModTime().UTC()
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StoredAt.Before(out[j].StoredAt) })
	return out
}

// History returns the journal, newest entry first; limit 0 means all.
func (tx *Tx) History(limit int) ([]EntrySummary, error) {
	j := tx.s.journal()
	ids, err := j.ids()
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	var out []EntrySummary
	for i := len(ids) - 1; i >= 0; i-- {
		if limit > 0 && len(out) >= limit {
			break
		}
		e, err := j.read(ids[i])
		if err != nil {
			return nil, journalError(j.dir, err)
		}
		out = append(out, e.EntrySummary)
	}
	return out, nil
}

// renameHint tells how to bring a file whose name is not a valid module
// name under management: rename it, then adopt it.
func (tx *Tx) renameHint(name string) string {
	path := filepath.Join(tx.s.LoadedDir, name+".py")
	var ne *NameError
	if errors.As(ValidateName(name), &ne) && ne.Suggestion != "" {
		return fmt.Sprintf("rename it with 'mv %s %s', then run '%s'", ShellQuote(path),
			ShellQuote(filepath.Join(tx.s.LoadedDir, ne.Suggestion+".py")), tx.s.command("adopt %s", ne.Suggestion))
	}
	return fmt.Sprintf("rename %s to a valid module name (lowercase letters, digits and underscores) plus .py, then run '%s'",
		ShellQuote(path), tx.s.command("adopt NAME"))
}

// knownNames lists every name a command could mean: managed, loaded and
// built-in modules.
func (tx *Tx) knownNames() []string {
	set := map[string]bool{}
	for n := range tx.state.Modules {
		set[n] = true
	}
	for n := range tx.loaded {
		set[n] = true
	}
	for _, b := range tx.builtins() {
		set[b.Name] = true
	}
	return sortedKeys(set)
}

// unknownModule is the error for a name cfyauth does not know, with the
// closest known name.
func (tx *Tx) unknownModule(name, command string) error {
	e := apperr.Usage("unknown_module", "no module named %q", name)
	if s := closestName(name, tx.knownNames()); s != "" {
		e.Message += ", did you mean " + s + "?"
		e.WithHint("run '%s'", tx.s.command("%s %s", command, s))
	}
	return e.WithHint("run '%s' to see every module", tx.s.command("list"))
}

// closestName returns the candidate nearest to name by edit distance, when
// it is close enough to be a likely typo.
func closestName(name string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(name, c)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if len(name) > 8 {
		limit = 3
	}
	if best != "" && (bestDist <= limit || strings.HasPrefix(best, name) || strings.HasPrefix(name, best)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between two strings, by byte.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
