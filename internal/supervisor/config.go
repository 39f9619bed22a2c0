package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// SocketConfig is the [unix_http_server] section of a supervisord
// configuration: where the socket is and which credentials it requires.
type SocketConfig struct {
	Socket   string
	Username string
	Password string
	// Includes are the glob patterns of the [include] section's files key.
	Includes []string
	// CtlUsername and CtlPassword are the [supervisorctl] credentials,
	// which supervisorctl sends. They are needed when [unix_http_server]
	// stores its password as a SHA-1 hash ("{SHA}" followed by hex).
	CtlUsername string
	CtlPassword string
}

// HashedPassword reports whether [unix_http_server] stores its password as
// a SHA-1 hash, which a client cannot send.
func (c SocketConfig) HashedPassword() bool {
	return strings.HasPrefix(c.Password, "{SHA}")
}

// ParseConfig reads the parts of a supervisord configuration file that a
// client needs. It follows supervisord's INI dialect: "[section]" headers,
// "key = value" or "key: value" lines, and ";" or "#" comments at the start
// of a line or after whitespace.
func ParseConfig(r io.Reader) (SocketConfig, error) {
	var cfg SocketConfig
	section := ""
	sc := bufio.NewScanner(r)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := stripComment(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return cfg, fmt.Errorf("line %d: invalid section header %q", lineNo, line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		key, value, ok := splitKeyValue(line)
		if !ok {
			continue
		}
		switch {
		case section == "unix_http_server" && key == "file":
			cfg.Socket = value
		case section == "unix_http_server" && key == "username":
			cfg.Username = value
		case section == "unix_http_server" && key == "password":
			cfg.Password = value
		case section == "supervisorctl" && key == "username":
			cfg.CtlUsername = value
		case section == "supervisorctl" && key == "password":
			cfg.CtlPassword = value
		case section == "include" && key == "files":
			cfg.Includes = strings.Fields(value)
		}
	}
	if err := sc.Err(); err != nil {
		return cfg, fmt.Errorf("read supervisord configuration: %w", err)
	}
	return cfg, nil
}

// ProgramNames returns the program names defined by "[program:NAME]"
// sections of a configuration file.
func ProgramNames(r io.Reader) []string {
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := stripComment(sc.Text())
		if strings.HasPrefix(line, "[program:") && strings.HasSuffix(line, "]") {
			names = append(names, strings.TrimSpace(line[len("[program:"):len(line)-1]))
		}
	}
	return names
}

func stripComment(line string) string {
	trimmed := strings.TrimSpace(line)
	if strings.HasPrefix(trimmed, ";") || strings.HasPrefix(trimmed, "#") {
		return ""
	}
	for i := 1; i < len(line); i++ {
		if (line[i] == ';' || line[i] == '#') && (line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	return strings.TrimSpace(line)
}

func splitKeyValue(line string) (string, string, bool) {
	i := strings.IndexAny(line, "=:")
	if i <= 0 {
		return "", "", false
	}
	return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:]), true
}
