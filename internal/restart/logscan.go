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
	// Text is the log line before the traceback, the traceback and the
	// exception line.
	Text string `json:"-"`
	// Exception is the last line, such as "ImportError: No module named x".
	Exception string `json:"exception"`
	// Modules are the enabled modules the traceback names.
	Modules []string `json:"modules,omitempty"`
}

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
		start := i
		if i > 0 && !strings.Contains(lines[i-1], tracebackHeader) {
			start = i - 1
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
