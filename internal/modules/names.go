package modules

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NameInfo is one module name as read without the lock, for looking a
// module up by name and for shell completion.
type NameInfo struct {
	Name string
	// Managed is set when the module has a receipt, Enabled when that
	// receipt records the module as enabled.
	Managed bool
	Enabled bool
	// Loaded is set when a file of that name is in the loaded folder.
	Loaded  bool
	Builtin bool
}

// ReadNames lists every module name: receipts from state.json, files in the
// loaded folder, and the premium package's built-ins, sorted by name. It
// takes no lock, which is safe because state.json is only ever replaced
// whole; a state.json that cannot be read contributes no names.
func ReadNames(s *Store) []NameInfo {
	names := map[string]*NameInfo{}
	get := func(name string) *NameInfo {
		if names[name] == nil {
			names[name] = &NameInfo{Name: name}
		}
		return names[name]
	}
	if data, err := os.ReadFile(s.statePath()); err == nil {
		if doc, err := parseState(s.statePath(), data); err == nil {
			for name, rec := range doc.Modules {
				info := get(name)
				info.Managed, info.Enabled = true, rec.Enabled
			}
		}
	}
	for _, name := range pyStems(s.LoadedDir) {
		get(name).Loaded = true
	}
	for _, dir := range s.PremiumDirs {
		for _, name := range pyStems(dir) {
			if builtinKind(name) != "" {
				get(name).Builtin = true
			}
		}
	}
	out := make([]NameInfo, 0, len(names))
	for _, name := range sortedKeys(names) {
		out = append(out, *names[name])
	}
	return out
}

// pyStems lists the names of the visible .py files in dir.
func pyStems(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var stems []string
	for _, e := range entries {
		if stem, ok := strings.CutSuffix(e.Name(), ".py"); ok && stem != "" && !strings.HasPrefix(stem, ".") {
			stems = append(stems, stem)
		}
	}
	return stems
}

// InstalledPath returns the file of a module by name for validate and test:
// the file in the loaded folder, or else the stored copy of its receipt
// (a disabled module).
func InstalledPath(s *Store, name string) (string, error) {
	loaded := filepath.Join(s.LoadedDir, name+".py")
	if st, err := os.Stat(loaded); err == nil && st.Mode().IsRegular() {
		return loaded, nil
	}
	if data, err := os.ReadFile(s.statePath()); err == nil {
		if doc, err := parseState(s.statePath(), data); err == nil {
			if rec := doc.Modules[name]; rec != nil {
				return s.BlobPath(name, rec.SHA256), nil
			}
		}
	}
	var known []string
	for _, info := range ReadNames(s) {
		if !info.Builtin {
			known = append(known, info.Name)
		}
	}
	e := &SourceError{Origin: name, Reason: fmt.Sprintf("no installed module of that name (looked in %s and the store %s)", s.LoadedDir, s.StateDir),
		Hint: fmt.Sprintf("run '%s' to see the installed modules, or pass a file path", s.command("list"))}
	if closest := closestName(name, known); closest != "" {
		e.Reason = fmt.Sprintf("no installed module of that name, did you mean %s? (looked in %s and the store %s)", closest, s.LoadedDir, s.StateDir)
	}
	return "", e
}
