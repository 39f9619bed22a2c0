package modules

import (
	"fmt"
	"path/filepath"
	"strings"
)

// CommandLine renders a cfyauth command for a hint or a next step. Under a
// root other than / it carries --root with the absolute root, shell-quoted,
// so the command can be pasted as it is from any folder.
func CommandLine(root, args string) string {
	if root == "" || filepath.Clean(root) == "/" {
		return "cfyauth " + args
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return "cfyauth --root " + ShellQuote(root) + " " + args
}

// ShellQuote quotes s for a POSIX shell when it needs quoting.
func ShellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>(){}*?[]#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// command renders a cfyauth command under the store's root.
func (s *Store) command(format string, args ...any) string {
	return CommandLine(s.Layout.Root, fmt.Sprintf(format, args...))
}
