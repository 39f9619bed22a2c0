package restart

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cfyauth/cfyauth/internal/manager"
)

// REST log files under /var/log/cloudify/rest, in the order their lines are
// shown when the journal has none. The access and audit logs are left out:
// they hold requests, not tracebacks.
var (
	restLogNames = []string{"cloudify-rest-service.log", "gunicorn.log"}
	// apiLogNames are the log files of cloudify-api (Cloudify 6.4 and later).
	apiLogNames = []string{"api-gunicorn.log"}
)

// RESTLogFiles returns the host paths of the REST service's log files under
// the layout's root, plus cloudify-api's when withAPI is set.
func RESTLogFiles(layout *manager.Layout, withAPI bool) []string {
	names := restLogNames
	if withAPI {
		names = append(append([]string{}, restLogNames...), apiLogNames...)
	}
	var files []string
	for _, name := range names {
		path, err := layout.Path(filepath.Join(manager.RestLogDir, name))
		if err != nil {
			path = filepath.Join(layout.Root, manager.RestLogDir, name)
		}
		files = append(files, path)
	}
	return files
}

// logOffsets records each file's size, so that what the restart appended can
// be read later. A missing file has offset 0: it may be created by the start.
func logOffsets(files []string) map[string]int64 {
	offsets := make(map[string]int64, len(files))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			offsets[f] = st.Size()
		} else {
			offsets[f] = 0
		}
	}
	return offsets
}

// maxLogRead bounds how much of one log file is read after a restart.
const maxLogRead = 8 << 20

// readSince returns what a file holds past offset. A file now shorter than
// offset was rotated or truncated, so all of it is new. truncated is set when
// more than maxLogRead bytes were appended; then only the first maxLogRead
// are returned, because tracebacks from loading modules come first.
func readSince(path string, offset int64) (data []byte, truncated bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if st.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, false, err
	}
	data, err = io.ReadAll(io.LimitReader(f, maxLogRead+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > maxLogRead {
		return data[:maxLogRead], true, nil
	}
	return data, false, nil
}

// Traceback is one Python traceback found in a log.
type Traceback struct {
	File string `json:"file"`
	// Line is the 1-based line of "Traceback (most recent call last):" in
	// the text read since the restart.
	Line int `json:"line"`
	// Message is the log line before the traceback, such as "failed to load
	// authenticator module x"; empty when the traceback starts the text.
	Message string `json:"-"`
	// Text is the log line before the traceback, the traceback and the
	// exception line.
	Text string `json:"-"`
	// Exception is the last line, such as "ImportError: No module named x".
	Exception string `json:"exception"`
	// Modules are the enabled modules the traceback names.
	Modules []string `json:"modules,omitempty"`
	// Origin is when the traceback was raised: OriginLoad, OriginRequest
	// or OriginUnknown. It is set only for tracebacks that name a module.
	Origin string `json:"origin,omitempty"`
	// OriginReason is the evidence Origin rests on, for messages.
	OriginReason string `json:"origin_reason,omitempty"`
}

// Origins of a traceback that names an enabled module.
const (
	// OriginLoad is a traceback raised while the REST service imported the
	// module or called its configure at start: the module is not loaded.
	OriginLoad = "load"
	// OriginRequest is a traceback raised while a loaded module handled a
	// request, such as one login.
	OriginRequest = "request"
	// OriginUnknown is a traceback that names the module but shows neither.
	OriginUnknown = "unknown"
)

const tracebackHeader = "Traceback (most recent call last):"

// findTracebacks splits log text into Python tracebacks. A traceback runs
// from its header over the indented frame lines to the first line that is
// not indented, the exception line. The log line before the header is kept,
// because a logger's message (such as "failed to load authenticator x")
// often names the module when the frames do not.
func findTracebacks(file string, text []byte) []Traceback {
	lines := strings.Split(string(text), "\n")
	var found []Traceback
	for i := 0; i < len(lines); i++ {
		if !strings.Contains(lines[i], tracebackHeader) {
			continue
		}
		start, message := i, ""
		if i > 0 && !strings.Contains(lines[i-1], tracebackHeader) {
			start, message = i-1, lines[i-1]
		}
		end := i + 1
		for end < len(lines) && (strings.HasPrefix(lines[end], " ") || strings.HasPrefix(lines[end], "\t")) {
			end++
		}
		exception := ""
		if end < len(lines) {
			exception = strings.TrimSpace(lines[end])
			end++
		}
		found = append(found, Traceback{
			File:      file,
			Line:      i + 1,
			Message:   message,
			Text:      strings.Join(lines[start:end], "\n"),
			Exception: exception,
		})
		i = end - 1
	}
	return found
}

// namedModules returns the modules a traceback names: by their file in the
// authenticators folder, or by the module name as a whole word.
func namedModules(tb Traceback, modules []string) []string {
	var named []string
	for _, m := range modules {
		word := regexp.MustCompile(`(^|[^A-Za-z0-9_])` + regexp.QuoteMeta(m) + `($|[^A-Za-z0-9_])`)
		if strings.Contains(tb.Text, "authenticators/"+m+".py") || word.MatchString(tb.Text) {
			named = append(named, m)
		}
	}
	return named
}

// frameLine matches a frame of a Python traceback, `File "PATH", line N,
// in FUNCTION`, and the location line of a SyntaxError, which has no
// function.
var frameLine = regexp.MustCompile(`^\s+File "([^"]+)", line \d+(?:, in (.+))?$`)

// requestMessage matches a log message written while handling a request:
// Flask's "Exception on /api/v3.1/user [GET]", or one naming the method
// and path, such as "authenticator x raised while handling GET /api/v3.1/user".
var requestMessage = regexp.MustCompile(`Exception on /|\b(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /`)

// classifyTraceback decides whether a traceback was raised while a module
// in the authenticators folder was loaded or while it handled a request.
// Python prints the outermost call first, so the first frame in that
// folder is where the REST service called into a module: its top level
// ("<module>") or its configure while loading it at start, a SyntaxError's
// location (which only compiling, at import, raises), or any other
// function, such as _authenticate_request, while handling a request.
// Without such a frame, a log message naming an HTTP method and path
// marks a request; anything else is OriginUnknown.
func classifyTraceback(tb Traceback) (origin, reason string) {
	for _, line := range strings.Split(tb.Text, "\n") {
		m := frameLine.FindStringSubmatch(line)
		if m == nil || !strings.Contains(m[1], "/authenticators/") || !strings.HasSuffix(m[1], ".py") {
			continue
		}
		file, function := filepath.Base(m[1]), m[2]
		switch function {
		case "":
			return OriginLoad, "a syntax error in " + file
		case "<module>":
			return OriginLoad, "raised while importing " + file
		case "configure":
			return OriginLoad, "raised in configure of " + file
		}
		return OriginRequest, "raised in " + function + " of " + file
	}
	if requestMessage.MatchString(tb.Message) {
		return OriginRequest, "logged while handling a request"
	}
	return OriginUnknown, "no frame in the authenticators folder"
}

// EnabledModules lists the modules the REST service loads from the
// authenticators folder: the *.py files in it, by module name, whether
// cfyauth placed them or not.
//
// NOTE: the manager's loader is not public, so whether it also imports
// packages (folders with __init__.py) is unknown; only *.py files are listed.
func EnabledModules(layout *manager.Layout) ([]string, error) {
	dir, err := layout.Authenticators()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".py") {
			continue
		}
		names = append(names, strings.TrimSuffix(name, ".py"))
	}
	return names, nil
}
