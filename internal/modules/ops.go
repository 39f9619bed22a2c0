package modules

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/report"
)

// Validator runs validate's static checks for the store. The CLI supplies
// one bound to the manager's Python.
type Validator interface {
	// Interpreter returns the interpreter whose version keys cached results.
	Interpreter(ctx context.Context) (Interpreter, error)
	// Validate checks the candidates, one result per candidate in order.
	Validate(ctx context.Context, candidates []Candidate) ([]Validation, error)
}

// ValidationFailure carries the results of a validation that rejected one
// or more modules, so the caller can show every check.
type ValidationFailure struct {
	Results []Validation
}

func (e *ValidationFailure) Error() string {
	var names []string
	for _, r := range e.Results {
		if r.Status == report.Fail {
			names = append(names, r.Name)
		}
	}
	return "validation failed for " + strings.Join(names, ", ")
}

// ChangeOptions are the options every changing operation takes.
type ChangeOptions struct {
	// DryRun computes the change and writes nothing.
	DryRun bool
	// Force allows replacing or deleting unmanaged and modified files. Their
	// bytes are kept in the store first, so rollback can restore them.
	Force bool
	// SkipValidation installs or enables without validating; receipts
	// record it.
	SkipValidation bool
	// Strict makes validation warnings reject a module.
	Strict    bool
	Validator Validator
}

// InstallOptions configure Install.
type InstallOptions struct {
	ChangeOptions
	Enable bool
}

// Actions reported per module.
const (
	ActionInstalled = "installed"
	ActionUpdated   = "updated"
	ActionEnabled   = "enabled"
	ActionDisabled  = "disabled"
	ActionRemoved   = "removed"
	ActionAdopted   = "adopted"
	ActionRestored  = "restored"
	ActionUnchanged = "unchanged"
)

// ModuleChange describes the effect of an operation on one module, done or
// planned.
type ModuleChange struct {
	Name   string      `json:"name"`
	Action string      `json:"action"`
	SHA256 string      `json:"sha256,omitempty"`
	State  ModuleState `json:"state,omitempty"`
	Detail string      `json:"detail,omitempty"`
}

// Change is the outcome of a changing operation.
type Change struct {
	Op      string `json:"op"`
	Changed bool   `json:"changed"`
	DryRun  bool   `json:"dry_run"`
	// JournalID is the journal entry of the change; rollback --to takes it.
	JournalID    int            `json:"journal_id,omitempty"`
	RestoredFrom int            `json:"restored_from,omitempty"`
	Modules      []ModuleChange `json:"modules"`
	// LoadedChanged is set when the loaded folder changed (or would), so
	// the REST service needs a restart to see it.
	LoadedChanged bool         `json:"loaded_changed"`
	Validations   []Validation `json:"validations,omitempty"`
	// Before is the module set before the change; Restore brings it back,
	// for example when the REST service fails its health check after a
	// restart.
	Before Snapshot `json:"-"`
	After  Snapshot `json:"-"`
}

func (tx *Tx) now() time.Time { return tx.s.Now().UTC() }

// standardFile is how cfyauth places a module: mode 0640, owned by cfyuser.
func (tx *Tx) standardFile(sha string) LoadedFile {
	return LoadedFile{SHA256: sha, Mode: Mode(moduleFileMode), UID: tx.s.Owner.UID, GID: tx.s.Owner.GID}
}

func (tx *Tx) loadedPath(name string) string {
	return filepath.Join(tx.s.LoadedDir, name+".py")
}

// Install adds a module's bytes to the store with a receipt and, with
// Enable, puts it into the loaded folder. Installing the bytes a receipt
// already has changes nothing.
func (tx *Tx) Install(src Source, opts InstallOptions) (*Change, error) {
	name := src.Name
	if err := ValidateName(name); err != nil {
		return nil, nameError(err)
	}
	if src.SHA256 == "" {
		src.SHA256 = sha256Hex(src.Data)
	}
	rec := tx.state.Modules[name]
	cur := tx.loaded[name]
	if err := tx.checkReplaceable(name, rec, cur, opts.Force, installRetry(src)); err != nil {
		return nil, err
	}
	results, err := tx.validate([]Candidate{{Source: src}}, opts.ChangeOptions)
	if err != nil {
		return nil, err
	}

	now := tx.now()
	after := tx.Snapshot()
	var receipt Receipt
	action := ActionInstalled
	switch {
	case rec == nil:
		receipt = Receipt{Name: name, SHA256: src.SHA256, Source: src.Origin, InstalledAt: now,
			InstalledBy: tx.s.User, Enabled: opts.Enable, SkippedValidation: opts.SkipValidation}
	case rec.SHA256 == src.SHA256:
		receipt = rec.clone()
		receipt.Enabled = rec.Enabled || opts.Enable
		if !opts.SkipValidation {
			receipt.SkippedValidation = false
		}
		action = ActionUnchanged
		switch {
		case receipt.Enabled && !rec.Enabled:
			action = ActionEnabled
		case receipt.Enabled && cur != nil && cur.File.SHA256 != src.SHA256:
			// --force over a file changed by hand puts the installed bytes back.
			action = ActionRestored
		}
	default:
		receipt = Receipt{Name: name, SHA256: src.SHA256, Source: src.Origin, InstalledAt: now,
			InstalledBy: tx.s.User, Enabled: rec.Enabled || opts.Enable, SkippedValidation: opts.SkipValidation}
		action = ActionUpdated
	}
	switch {
	case !receipt.Enabled:
		receipt.EnabledAt = nil
	case rec == nil || !rec.Enabled || rec.SHA256 != src.SHA256 || cur == nil:
		receipt.EnabledAt = &now
	}
	after.Receipts[name] = receipt
	if receipt.Enabled {
		after.Loaded[name] = tx.standardFile(src.SHA256)
	} else {
		delete(after.Loaded, name)
	}
	if !opts.DryRun {
		if err := tx.putBlob(name, src.Data); err != nil {
			return nil, err
		}
	}
	mod := ModuleChange{Name: name, Action: action, SHA256: src.SHA256}
	var replaced string
	switch {
	case cur != nil && rec == nil:
		replaced = "that cfyauth did not place"
	case cur != nil && cur.File.SHA256 != rec.SHA256 && cur.File.SHA256 != src.SHA256:
		replaced = "that was changed by hand"
	}
	switch {
	case replaced != "" && opts.DryRun:
		mod.Detail = fmt.Sprintf("would replace the file %s (%s) %s; its bytes would be kept in the store for '%s'",
			cur.Path, shortSHA(cur.File.SHA256), replaced, tx.s.command("rollback"))
	case replaced != "":
		mod.Detail = fmt.Sprintf("replaced the file %s (%s) %s; '%s' restores it", cur.Path, shortSHA(cur.File.SHA256), replaced, tx.s.command("rollback"))
	}
	return tx.finishChange("install", []string{name}, after, []ModuleChange{mod}, results, 0, opts.ChangeOptions)
}

// Enable puts managed modules into the loaded folder, validating each one
// first. Enabling an enabled module changes nothing.
func (tx *Tx) Enable(names []string, opts ChangeOptions) (*Change, error) {
	names = dedupe(names)
	after := tx.Snapshot()
	now := tx.now()
	var mods []ModuleChange
	var cands []Candidate
	for _, name := range names {
		rec, err := tx.managed(name, "enable")
		if err != nil {
			return nil, err
		}
		cur := tx.loaded[name]
		if rec.Enabled && cur != nil && cur.Regular && cur.File.SHA256 == rec.SHA256 {
			after.Loaded[name] = tx.standardFile(rec.SHA256)
			mods = append(mods, ModuleChange{Name: name, Action: ActionUnchanged, SHA256: rec.SHA256})
			continue
		}
		if err := tx.checkReplaceable(name, rec, cur, opts.Force, "enable "+name+" --force"); err != nil {
			return nil, err
		}
		data, err := tx.s.readBlob(name, rec.SHA256)
		if err != nil {
			return nil, err
		}
		cands = append(cands, Candidate{Source: Source{Origin: tx.s.BlobPath(name, rec.SHA256), Name: name, Data: data, SHA256: rec.SHA256}})
		r := rec.clone()
		r.Enabled = true
		r.EnabledAt = &now
		if !opts.SkipValidation {
			r.SkippedValidation = false
		}
		after.Receipts[name] = r
		after.Loaded[name] = tx.standardFile(rec.SHA256)
		action := ActionEnabled
		if rec.Enabled {
			action = ActionRestored
		}
		mods = append(mods, ModuleChange{Name: name, Action: action, SHA256: rec.SHA256})
	}
	results, err := tx.validate(cands, opts)
	if err != nil {
		return nil, err
	}
	return tx.finishChange("enable", names, after, mods, results, 0, opts)
}

// Disable takes managed modules out of the loaded folder; their bytes stay
// in the store. Disabling a disabled module changes nothing.
func (tx *Tx) Disable(names []string, opts ChangeOptions) (*Change, error) {
	names = dedupe(names)
	after := tx.Snapshot()
	var mods []ModuleChange
	for _, name := range names {
		rec, err := tx.managed(name, "disable")
		if err != nil {
			return nil, err
		}
		cur := tx.loaded[name]
		if !rec.Enabled && cur == nil {
			mods = append(mods, ModuleChange{Name: name, Action: ActionUnchanged, SHA256: rec.SHA256})
			continue
		}
		if err := tx.checkDeletable(name, rec, cur, opts.Force, "disable "+name+" --force"); err != nil {
			return nil, err
		}
		r := rec.clone()
		r.Enabled = false
		r.EnabledAt = nil
		after.Receipts[name] = r
		delete(after.Loaded, name)
		mods = append(mods, ModuleChange{Name: name, Action: ActionDisabled, SHA256: rec.SHA256})
	}
	return tx.finishChange("disable", names, after, mods, nil, 0, opts)
}

// Remove uninstalls managed modules: out of the loaded folder and out of the
// receipts. The stored bytes stay, so rollback can bring them back. A module
// removed earlier (no receipt, no file, but stored versions) is unchanged.
func (tx *Tx) Remove(names []string, opts ChangeOptions) (*Change, error) {
	names = dedupe(names)
	after := tx.Snapshot()
	var mods []ModuleChange
	for _, name := range names {
		rec := tx.state.Modules[name]
		cur := tx.loaded[name]
		if rec == nil && cur == nil && isSafeFileStem(name) && len(tx.storedVersions(name)) > 0 {
			// Removed earlier: the store still has its versions. Removing
			// again changes nothing, so scripts can run remove twice.
			mods = append(mods, ModuleChange{Name: name, Action: ActionUnchanged, Detail: "already removed; its stored versions stay for rollback"})
			continue
		}
		if rec == nil && cur != nil {
			return nil, apperr.Failed("unmanaged_file", "%s was not installed by cfyauth, so remove does not delete it", cur.Path).
				WithHint("take it under management first: %s && %s", tx.s.command("adopt %s", name), tx.s.command("remove %s", name)).
				WithHint("or delete the file yourself")
		}
		rec, err := tx.managed(name, "remove")
		if err != nil {
			return nil, err
		}
		if err := tx.checkDeletable(name, rec, cur, opts.Force, "remove "+name+" --force"); err != nil {
			return nil, err
		}
		delete(after.Receipts, name)
		delete(after.Loaded, name)
		mods = append(mods, ModuleChange{Name: name, Action: ActionRemoved, SHA256: rec.SHA256})
	}
	return tx.finishChange("remove", names, after, mods, nil, 0, opts)
}

// Adopt takes files in the loaded folder that cfyauth did not place (or that
// differ from their receipt) under management, after validation: their
// bytes go into the store, they get a receipt, owner and mode are fixed.
// With all set, every unmanaged and modified file is adopted.
func (tx *Tx) Adopt(names []string, all bool, opts ChangeOptions) (*Change, error) {
	if all {
		names = nil
		for _, n := range sortedKeys(tx.loaded) {
			st := tx.status(n)
			if st.State == StateUnmanaged || st.State == StateModified {
				names = append(names, n)
			}
		}
	}
	names = dedupe(names)
	after := tx.Snapshot()
	now := tx.now()
	var mods []ModuleChange
	var cands []Candidate
	for _, name := range names {
		cur := tx.loaded[name]
		rec := tx.state.Modules[name]
		if cur == nil {
			if rec != nil {
				return nil, apperr.Failed("nothing_to_adopt", "%s has no file in the loaded folder to adopt (state %s)", name, tx.status(name).State).
					WithHint("adopt takes files that are in %s; to put a managed module there run '%s'", tx.s.LoadedDir, tx.s.command("enable %s", name))
			}
			return nil, tx.unknownModule(name, "adopt")
		}
		if !cur.Regular || cur.TooLarge {
			return nil, apperr.Failed("not_adoptable", "%s is not a regular file of at most 1 MiB, so cfyauth cannot manage it", cur.Path).
				WithHint("replace it with the module's .py source file, or move it out of %s", tx.s.LoadedDir)
		}
		if err := ValidateName(name); err != nil {
			// adopt takes the name from the file, so the fix is a rename.
			return nil, apperr.Usage("invalid_name", "%s", err.Error()).WithHint("%s", tx.renameHint(name))
		}
		if rec != nil && rec.Enabled && rec.SHA256 == cur.File.SHA256 {
			after.Loaded[name] = tx.standardFile(rec.SHA256)
			action := ActionUnchanged
			if cur.File != after.Loaded[name] {
				action = ActionAdopted
			}
			mods = append(mods, ModuleChange{Name: name, Action: action, SHA256: rec.SHA256, Detail: "already managed"})
			continue
		}
		data, err := readRegular(cur.Path)
		if err != nil {
			return nil, fsError("read", cur.Path, err)
		}
		if sha256Hex(data) != cur.File.SHA256 {
			return nil, apperr.Failed("file_changed", "%s changed while cfyauth was reading it", cur.Path).
				WithHint("make sure nothing else writes to %s, and run the command again", tx.s.LoadedDir)
		}
		src := Source{Origin: cur.Path, Name: name, Data: data, SHA256: cur.File.SHA256}
		if err := CheckBytes(&src); err != nil {
			return nil, sourceUsageError(err)
		}
		cands = append(cands, Candidate{Source: src})
		after.Receipts[name] = Receipt{Name: name, SHA256: src.SHA256, Source: "adopted:" + cur.Path, InstalledAt: now,
			InstalledBy: tx.s.User, Enabled: true, EnabledAt: &now, SkippedValidation: opts.SkipValidation}
		after.Loaded[name] = tx.standardFile(src.SHA256)
		mods = append(mods, ModuleChange{Name: name, Action: ActionAdopted, SHA256: src.SHA256})
	}
	results, err := tx.validate(cands, opts)
	if err != nil {
		return nil, err
	}
	if !opts.DryRun {
		for _, c := range cands {
			if err := tx.putBlob(c.Source.Name, c.Source.Data); err != nil {
				return nil, err
			}
		}
	}
	return tx.finishChange("adopt", names, after, mods, results, 0, opts)
}

// NewestEntry makes Rollback undo the newest journal entry.
const NewestEntry = -1

// Rollback restores the module set that was in place before journal entry
// to, or before the newest entry when to is NewestEntry. A rollback is
// journaled too, so a second rollback undoes the first.
func (tx *Tx) Rollback(to int, opts ChangeOptions) (*Change, error) {
	j := tx.s.journal()
	ids, err := j.ids()
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	if len(ids) == 0 {
		return nil, apperr.Failed("journal_empty", "there is no change to roll back: the journal in %s is empty", j.dir).
			WithHint("rollback restores what cfyauth install, enable, disable, remove and adopt changed")
	}
	id := ids[len(ids)-1]
	if to != NewestEntry {
		found := false
		for _, x := range ids {
			found = found || x == to
		}
		if !found {
			return nil, apperr.Usage("unknown_entry", "journal entry %d not found (the journal contains entries %d to %d)", to, ids[0], ids[len(ids)-1]).
				WithHint("run '%s' to see the entries", tx.s.command("rollback --list"))
		}
		id = to
	}
	entry, err := j.read(id)
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	written, err := tx.writtenSince(id)
	if err != nil {
		return nil, err
	}
	return tx.restore("rollback", entry.Before, entry.ID, written, opts)
}

// Restore makes the module set equal to snap: receipts, and the loaded
// folder byte for byte with each file's mode and owner. Files placed by hand
// since the snapshot are left alone. A file that snap would overwrite and
// that differs from its receipt is a conflict, unless Force is set. Files
// that the newest journal entry wrote are cfyauth's, even when no receipt
// matches them.
func (tx *Tx) Restore(snap Snapshot, opts ChangeOptions) (*Change, error) {
	var written map[string]string
	ids, err := tx.s.journal().ids()
	if err != nil {
		return nil, journalError(tx.s.journal().dir, err)
	}
	if len(ids) > 0 {
		if written, err = tx.writtenSince(ids[len(ids)-1]); err != nil {
			return nil, err
		}
	}
	return tx.restore("restore", snap, 0, written, opts)
}

// writtenSince returns, for each module file that journal entries from ID
// on changed, the sha256 of the file the last of them left in the loaded
// folder ("" when it deleted the file). A file still holding those bytes
// was placed by cfyauth, even without a receipt that matches: a rollback
// that brought back a file placed by hand, for example. A second rollback
// may therefore replace or delete it.
func (tx *Tx) writtenSince(from int) (map[string]string, error) {
	j := tx.s.journal()
	ids, err := j.ids()
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	written := map[string]string{}
	for _, id := range ids {
		if id < from {
			continue
		}
		e, err := j.read(id)
		if err != nil {
			return nil, journalError(j.dir, err)
		}
		for _, c := range diffLoaded(e.Before.Loaded, e.After.Loaded) {
			written[c.Name] = ""
			if c.To != nil {
				written[c.Name] = c.To.SHA256
			}
		}
	}
	return written, nil
}

// restore makes the module set equal to target. written maps the files
// that the journal entries being undone wrote to their sha256 (see
// writtenSince).
func (tx *Tx) restore(op string, target Snapshot, restoredFrom int, written map[string]string, opts ChangeOptions) (*Change, error) {
	current := tx.Snapshot()
	target = target.clone()
	after := Snapshot{Receipts: target.Receipts, Loaded: map[string]LoadedFile{}}
	for n, f := range current.Loaded {
		after.Loaded[n] = f
	}
	names := map[string]bool{}
	for _, m := range []map[string]LoadedFile{current.Loaded, target.Loaded} {
		for n := range m {
			names[n] = true
		}
	}
	for n := range current.Receipts {
		names[n] = true
	}
	for n := range target.Receipts {
		names[n] = true
	}
	var conflicts []string
	for _, name := range sortedKeys(names) {
		cur, inCur := current.Loaded[name]
		tgt, inTgt := target.Loaded[name]
		rec, hasRec := current.Receipts[name]
		sha, wasWritten := written[name]
		placedByCfyauth := inCur && ((hasRec && rec.Enabled && rec.SHA256 == cur.SHA256) || (wasWritten && sha == cur.SHA256))
		if e := tx.loaded[name]; e != nil && (!e.Regular || e.TooLarge) {
			if inTgt {
				conflicts = append(conflicts, e.Path+" (not a regular file of at most 1 MiB)")
			}
			continue
		}
		switch {
		case !inTgt && inCur:
			if placedByCfyauth {
				delete(after.Loaded, name)
			}
		case inTgt && (!inCur || cur.SHA256 == tgt.SHA256 || placedByCfyauth || opts.Force):
			if !tx.s.hasBlob(name, tgt.SHA256) {
				return nil, apperr.Failed("store_missing", "the stored copy of %s (%s) that %s needs is missing: %s",
					name, shortSHA(tgt.SHA256), op, tx.s.BlobPath(name, tgt.SHA256)).
					WithHint("install that version again, or roll back to another entry (%s)", tx.s.command("rollback --list"))
			}
			after.Loaded[name] = tgt
		case inTgt:
			conflicts = append(conflicts, tx.loadedPath(name))
		}
	}
	if len(conflicts) > 0 {
		return nil, apperr.Failed("restore_conflict", "%s would overwrite files changed by hand: %s", op, strings.Join(conflicts, ", ")).
			WithHint("take them under management with '%s', or overwrite them with --force (their bytes are kept in the store)", tx.s.command("adopt NAME"))
	}

	var mods []ModuleChange
	var changed []string
	for _, name := range sortedKeys(names) {
		cf, inC := current.Loaded[name]
		af, inA := after.Loaded[name]
		cr, hasC := current.Receipts[name]
		ar, hasA := after.Receipts[name]
		if inC == inA && cf == af && hasC == hasA && sameReceipts(map[string]Receipt{name: cr}, map[string]Receipt{name: ar}) {
			continue
		}
		changed = append(changed, name)
		m := ModuleChange{Name: name, Action: ActionRestored}
		switch {
		case hasA:
			m.SHA256 = ar.SHA256
		case inA:
			m.SHA256 = af.SHA256
		default:
			m.Action = ActionRemoved
		}
		mods = append(mods, m)
	}
	return tx.finishChange(op, changed, after, mods, nil, restoredFrom, opts)
}

// RecordRestart stores when the REST service was restarted, for the offline
// restart-pending check of list.
func (tx *Tx) RecordRestart(at time.Time) error {
	if tx.mode != LockExclusive {
		return errors.New("record restart: the store is open read-only")
	}
	t := at.UTC()
	tx.state.LastRestart = &t
	return tx.writeState()
}

// RecordRestartOutcome stores a restart cfyauth made and its outcome, and
// adds it to journal entry journalID when that is not 0 (the change the
// restart was made for). A healthy restart is also recorded as the last
// restart, because the running service then loaded the files changed
// before o.At, and the offline restart-pending check compares with it.
func (tx *Tx) RecordRestartOutcome(o RestartOutcome, journalID int) error {
	if tx.mode != LockExclusive {
		return errors.New("record restart: the store is open read-only")
	}
	o.At = o.At.UTC()
	if journalID != 0 {
		j := tx.s.journal()
		entry, err := j.read(journalID)
		if err != nil {
			return journalError(j.dir, err)
		}
		entry.Restarts = append(entry.Restarts, o)
		if err := j.write(entry); err != nil {
			return fsError("write the journal in", j.dir, err)
		}
	}
	tx.state.LastRestartOutcome = &o
	if o.Healthy {
		t := o.At
		tx.state.LastRestart = &t
	}
	return tx.writeState()
}

// finishChange commits after and builds the result.
func (tx *Tx) finishChange(op string, names []string, after Snapshot, mods []ModuleChange, results []Validation, restoredFrom int, opts ChangeOptions) (*Change, error) {
	before := tx.Snapshot()
	entry, err := tx.commit(op, names, after, restoredFrom, opts.DryRun)
	if err != nil {
		return nil, err
	}
	ch := &Change{Op: op, DryRun: opts.DryRun, RestoredFrom: restoredFrom, Modules: mods, Validations: results, Before: before, After: after}
	if entry != nil {
		ch.Changed = true
		ch.JournalID = entry.ID
		ch.LoadedChanged = len(diffLoaded(before.Loaded, after.Loaded)) > 0
	}
	for i := range ch.Modules {
		ch.Modules[i].State = stateIn(after, ch.Modules[i].Name)
		if !ch.Changed {
			ch.Modules[i].Action = ActionUnchanged
		}
	}
	return ch, nil
}

// stateIn returns a module's state in a snapshot, or "" when it has none.
func stateIn(snap Snapshot, name string) ModuleState {
	rec, hasRec := snap.Receipts[name]
	file, inLoaded := snap.Loaded[name]
	switch {
	case !hasRec && inLoaded:
		return StateUnmanaged
	case !hasRec:
		return ""
	case rec.Enabled && inLoaded && file.SHA256 == rec.SHA256:
		return StateEnabled
	case rec.Enabled && !inLoaded:
		return StateMissing
	case !rec.Enabled && !inLoaded:
		return StateDisabled
	}
	return StateModified
}

// managed returns a module's receipt, or the error for a name cfyauth does
// not manage.
func (tx *Tx) managed(name, command string) (*Receipt, error) {
	if rec := tx.state.Modules[name]; rec != nil {
		return rec, nil
	}
	if cur := tx.loaded[name]; cur != nil {
		return nil, apperr.Failed("unmanaged_file", "%s was placed in the loaded folder by hand and is not managed by cfyauth", cur.Path).
			WithHint("take it under management with '%s', then run '%s'", tx.s.command("adopt %s", name), tx.s.command("%s %s", command, name))
	}
	for _, b := range tx.builtins() {
		if b.Name == name {
			return nil, apperr.Usage("builtin_module", "%s is a built-in module of the premium package; cfyauth never changes it", name).
				WithHint("configure LDAP with the manager's own settings ('cfy ldap set'), and OKTA by placing its certificate")
		}
	}
	return nil, tx.unknownModule(name, command)
}

// installRetry returns the install command, without "cfyauth", that
// installs src again with --force: its source when that is a file path or
// URL, else a SOURCE placeholder.
func installRetry(src Source) string {
	source := "SOURCE"
	if src.Origin != "" && src.Origin != "-" && src.Origin != "stdin" {
		source = ShellQuote(src.Origin)
	}
	if IsURL(src.Origin) {
		source += " --sha256 " + src.SHA256
	}
	return fmt.Sprintf("install %s --name %s --force", source, src.Name)
}

// checkReplaceable rejects writing name into the loaded folder when the
// file there is not cfyauth's: not regular, unmanaged, or modified. retry
// is the command, without "cfyauth", that does the change with --force.
func (tx *Tx) checkReplaceable(name string, rec *Receipt, cur *loadedEntry, force bool, retry string) error {
	if cur == nil {
		return nil
	}
	if !cur.Regular {
		return apperr.Failed("not_regular_file", "%s is not a regular file; cfyauth never replaces it", cur.Path).
			WithHint("move it out of %s yourself, then run the command again", tx.s.LoadedDir)
	}
	if rec != nil && rec.Enabled && cur.File.SHA256 == rec.SHA256 {
		return nil
	}
	if force {
		return nil
	}
	if rec == nil {
		return apperr.Failed("unmanaged_file", "%s is already in the loaded folder and was not installed by cfyauth", cur.Path).
			WithHint("take it under management with '%s'", tx.s.command("adopt %s", name)).
			WithHint("or replace it with '%s'; its bytes stay in the store so '%s' brings them back", tx.s.command("%s", retry), tx.s.command("rollback"))
	}
	return tx.modifiedError(name, rec, cur, retry)
}

// checkDeletable rejects deleting a loaded file that differs from its
// receipt, unless force is set.
func (tx *Tx) checkDeletable(name string, rec *Receipt, cur *loadedEntry, force bool, retry string) error {
	if cur == nil {
		return nil
	}
	if !cur.Regular {
		return apperr.Failed("not_regular_file", "%s is not a regular file; cfyauth never deletes it", cur.Path).
			WithHint("move it out of %s yourself, then run the command again", tx.s.LoadedDir)
	}
	if (rec.Enabled && cur.File.SHA256 == rec.SHA256) || force {
		return nil
	}
	return tx.modifiedError(name, rec, cur, retry)
}

func (tx *Tx) modifiedError(name string, rec *Receipt, cur *loadedEntry, retry string) error {
	what := fmt.Sprintf("differs from the version cfyauth installed: want sha256 %s, got %s", rec.SHA256, cur.File.SHA256)
	if !rec.Enabled {
		what = "is in the loaded folder although the module is disabled"
	}
	return apperr.Failed("modified_file", "%s %s", cur.Path, what).
		WithHint("keep the file as it is with '%s'", tx.s.command("adopt %s", name)).
		WithHint("or run '%s'; the file's bytes stay in the store so '%s' brings them back", tx.s.command("%s", retry), tx.s.command("rollback"))
}

// validate runs the validator on candidates whose result is not cached for
// this interpreter, caches the results, and rejects failures.
func (tx *Tx) validate(cands []Candidate, opts ChangeOptions) ([]Validation, error) {
	if opts.SkipValidation || len(cands) == 0 {
		return nil, nil
	}
	if opts.Validator == nil {
		return nil, errors.New("validate modules: no validator configured")
	}
	interp, err := opts.Validator.Interpreter(tx.ctx)
	if err != nil {
		return nil, err
	}

	results := make([]Validation, len(cands))
	var todo []int
	for i, c := range cands {
		if v := tx.state.cachedValidation(c.Source.Name, c.Source.SHA256, interp.cacheKey()); v != nil {
			results[i] = Validation{Name: c.Source.Name, Origin: c.Source.Origin, SHA256: c.Source.SHA256, Status: v.Status, Checks: v.Checks}
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) > 0 {
		if err := tx.validateUncached(cands, todo, results, interp, opts.Validator); err != nil {
			return nil, err
		}
	}

	var failed []string
	for _, r := range results {
		if report.Failed(r.Checks, opts.Strict) {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		e := apperr.Failed("validation_failed", "validation failed for %s, so nothing was changed", strings.Join(failed, ", ")).
			Wrap(&ValidationFailure{Results: results})
		if opts.Strict {
			e.WithHint("warnings count as failures because --strict is set")
		}
		return results, e.WithHint("fix what the failing checks name, or go ahead anyway with --skip-validation; receipts record that")
	}
	return results, nil
}

// validateUncached runs the validator on the candidates at the todo indexes,
// stores each result in results and in the cache.
func (tx *Tx) validateUncached(cands []Candidate, todo []int, results []Validation, interp Interpreter, v Validator) error {
	batch := make([]Candidate, len(todo))
	for k, i := range todo {
		batch[k] = cands[i]
	}
	out, err := v.Validate(tx.ctx, batch)
	if err != nil {
		return err
	}
	if len(out) != len(batch) {
		return fmt.Errorf("validate modules: got %d results for %d modules", len(out), len(batch))
	}

	now := tx.now()
	for k, i := range todo {
		results[i] = out[k]
		tx.state.putValidation(CachedValidation{
			Name: cands[i].Source.Name, SHA256: cands[i].Source.SHA256, Python: interp.cacheKey(), PythonPath: interp.Path,
			ValidatorVersion: ValidatorVersion, Status: out[k].Status, Checks: out[k].Checks, CheckedAt: now,
		})
		tx.cacheDirty = true
	}
	return nil
}

func nameError(err error) *apperr.Error {
	var ne *NameError
	e := apperr.Usage("invalid_name", "%s", err.Error())
	if errors.As(err, &ne) && ne.Suggestion != "" {
		return e.WithHint("use a valid name, such as --name %s", ne.Suggestion)
	}
	return e.WithHint("name the module with --name: lowercase letters, digits and underscores")
}

// sourceUsageError turns a SourceError into a usage error with its hint.
func sourceUsageError(err error) *apperr.Error {
	var se *SourceError
	if errors.As(err, &se) {
		e := apperr.Usage("invalid_source", "%s", se.Error())
		if se.Hint != "" {
			e.WithHint("%s", se.Hint)
		}
		return e
	}
	return apperr.Usage("invalid_source", "%s", err.Error())
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
