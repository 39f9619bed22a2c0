package moduletest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// MaxCasesFileSize bounds a cases file.
const MaxCasesFileSize = 1 << 20

// maxSecretFileSize bounds a password or token file named in a cases file.
const maxSecretFileSize = 64 << 10

// CasesFile is a parsed cases file: requests with expected outcomes, and the
// environment of the module's process.
type CasesFile struct {
	Cases []Case
	// Env contains NAME=VALUE pairs, sorted by name.
	Env []string
}

// The keys a cases file may use, at each level.
var (
	topKeys    = []string{"cases", "env"}
	caseKeys   = []string{"name", "user", "password", "password_file", "bearer", "bearer_file", "headers", "secret_headers", "method", "path", "remote_addr", "json_body", "expect"}
	expectKeys = []string{"outcome", "user", "fields", "status"}
)

type casesSpec struct {
	Env   map[string]string `yaml:"env"`
	Cases []caseSpec        `yaml:"cases"`
}

type caseSpec struct {
	Name          string            `yaml:"name"`
	User          string            `yaml:"user"`
	Password      *string           `yaml:"password"`
	PasswordFile  string            `yaml:"password_file"`
	Bearer        string            `yaml:"bearer"`
	BearerFile    string            `yaml:"bearer_file"`
	Headers       map[string]string `yaml:"headers"`
	SecretHeaders map[string]string `yaml:"secret_headers"`
	Method        string            `yaml:"method"`
	Path          string            `yaml:"path"`
	RemoteAddr    string            `yaml:"remote_addr"`
	JSONBody      any               `yaml:"json_body"`
	Expect        *expectSpec       `yaml:"expect"`
	line          int
}

type expectSpec struct {
	Outcome string         `yaml:"outcome"`
	User    string         `yaml:"user"`
	Fields  map[string]any `yaml:"fields"`
	Status  int            `yaml:"status"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ReadCasesFile reads and checks a cases file. Paths in it (password_file,
// bearer_file) are relative to the file's folder. Every problem is a usage
// error that names the file, the line and the case.
func ReadCasesFile(path string) (*CasesFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, casesFileError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCasesFileSize+1))
	if err != nil {
		return nil, casesFileError(path, err)
	}
	if len(data) > MaxCasesFileSize {
		return nil, apperr.Usage("invalid_cases", "cases file %s is larger than the 1 MiB limit", path).
			WithHint("split the cases into several files")
	}
	return ParseCases(data, path, filepath.Dir(path))
}

func casesFileError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return apperr.Usage("invalid_cases", "cases file %s: no such file", path).WithHint("check the --cases path")
	case errors.Is(err, os.ErrPermission):
		return apperr.Usage("invalid_cases", "cases file %s: permission denied", path).
			WithHint("run as a user that can read the file")
	}
	return apperr.Usage("invalid_cases", "cannot read cases file %s: %v", path, err).WithHint("check the --cases path")
}

// ParseCases parses a cases file's content; origin names it in messages and
// dir resolves relative paths in it.
func ParseCases(data []byte, origin, dir string) (*CasesFile, error) {
	fail := func(line int, format string, args ...any) *apperr.Error {
		where := origin
		if line > 0 {
			where = fmt.Sprintf("%s:%d", origin, line)
		}
		return apperr.Usage("invalid_cases", "%s: %s", where, fmt.Sprintf(format, args...))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fail(0, "invalid YAML: %v", err).WithHint("fix the YAML syntax of the cases file")
	}
	if len(root.Content) == 0 {
		return nil, fail(0, "the file is empty").WithHint("list requests under 'cases:'; see 'cfyauth test --help'")
	}
	doc := root.Content[0]
	if err := checkKeys(doc, topKeys, "the top level", fail); err != nil {
		return nil, err
	}
	if err := checkCaseKeys(doc, fail); err != nil {
		return nil, err
	}
	if err := checkValueTypes(doc, fail); err != nil {
		return nil, err
	}
	var spec casesSpec
	if err := doc.Decode(&spec); err != nil {
		var typeErr *yaml.TypeError
		if errors.As(err, &typeErr) {
			return nil, fail(0, "%s", strings.Join(typeErr.Errors, "; ")).WithHint("fix the value types in the cases file")
		}
		return nil, fail(0, "%v", err).WithHint("fix the cases file")
	}
	lines := caseLines(doc)
	for i := range spec.Cases {
		if i < len(lines) {
			spec.Cases[i].line = lines[i]
		}
	}
	if len(spec.Cases) == 0 {
		return nil, fail(0, "no cases").WithHint("list requests under 'cases:', each with an 'expect:'")
	}

	out := &CasesFile{}
	for name, value := range spec.Env {
		if !envName.MatchString(name) {
			return nil, fail(0, "invalid environment variable name %q under env", name).
				WithHint("use letters, digits and underscores, as in CFY_PROXY_TOKEN_FILE")
		}
		out.Env = append(out.Env, name+"="+value)
	}
	sort.Strings(out.Env)

	names := map[string]bool{}
	for i, cs := range spec.Cases {
		c, err := cs.toCase(i, dir, fail)
		if err != nil {
			return nil, err
		}
		if names[c.Name] {
			return nil, fail(cs.line, "two cases are named %q", c.Name).WithHint("give every case its own name")
		}
		names[c.Name] = true
		out.Cases = append(out.Cases, c)
	}
	return out, nil
}

type failFunc func(line int, format string, args ...any) *apperr.Error

func checkKeys(node *yaml.Node, allowed []string, where string, fail failFunc) error {
	if node.Kind != yaml.MappingNode {
		return fail(node.Line, "%s must be a mapping of keys to values", where).
			WithHint("see the cases file example in 'cfyauth test --help'")
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key := node.Content[i]
		if !contains(allowed, key.Value) {
			return fail(key.Line, "unknown key %q in %s", key.Value, where).
				WithHint("known keys there: %s", strings.Join(allowed, ", "))
		}
	}
	return nil
}

func mappingValue(node *yaml.Node, key string) *yaml.Node {
	if node.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i+1]
		}
	}
	return nil
}

func caseLines(doc *yaml.Node) []int {
	list := mappingValue(doc, "cases")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var lines []int
	for _, item := range list.Content {
		lines = append(lines, item.Line)
	}
	return lines
}

func checkCaseKeys(doc *yaml.Node, fail failFunc) error {
	list := mappingValue(doc, "cases")
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	for i, item := range list.Content {
		where := fmt.Sprintf("case %d", i+1)
		if err := checkKeys(item, caseKeys, where, fail); err != nil {
			return err
		}
		if expect := mappingValue(item, "expect"); expect != nil {
			if err := checkKeys(expect, expectKeys, "the expect of "+where, fail); err != nil {
				return err
			}
		}
	}
	return nil
}

// Keys whose values are not single values.
var (
	mappingKeys = map[string]string{
		"headers":        "a mapping of header names to values, such as {X-Proxy-User: alice}",
		"secret_headers": "a mapping of header names to values, such as {X-Proxy-Token: tok}",
	}
	anyKeys = map[string]bool{"json_body": true, "expect": true}
)

// checkValueTypes checks the type of every value the decoder would reject,
// so the error names the case and the key instead of a Go type.
func checkValueTypes(doc *yaml.Node, fail failFunc) error {
	if env := mappingValue(doc, "env"); env != nil {
		if err := checkStringMap(env, "env", "a mapping of variable names to values, such as {CFY_PROXY_TOKEN_FILE: /tmp/token}", fail); err != nil {
			return err
		}
	}
	list := mappingValue(doc, "cases")
	if list == nil {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		return fail(list.Line, "cases must be a list of requests, each starting with '- '").
			WithHint("see the cases file example in 'cfyauth test --help'")
	}
	for i, item := range list.Content {
		name := fmt.Sprintf("case %d", i+1)
		if n := mappingValue(item, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
			name = fmt.Sprintf("case %q", n.Value)
		}
		if err := checkCaseValues(item, name, fail); err != nil {
			return err
		}
		if expect := mappingValue(item, "expect"); expect != nil {
			if err := checkCaseValues(expect, name+": expect", fail); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkCaseValues(node *yaml.Node, where string, fail failFunc) error {
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i].Value, node.Content[i+1]
		switch {
		case anyKeys[key]:
		case key == "fields":
			// Field values may be lists or mappings; the key names fields.
			if value.Kind != yaml.MappingNode {
				return fail(value.Line, "%s: fields must be a mapping of field names to values, such as {email: alice@example.org}, not %s",
					where, describeNode(value)).WithHint("see the cases file example in 'cfyauth test --help'")
			}
		case mappingKeys[key] != "":
			if err := checkStringMap(value, where+": "+key, mappingKeys[key], fail); err != nil {
				return err
			}
		case key == "status":
			if value.Kind != yaml.ScalarNode || value.Tag != "!!int" {
				return fail(value.Line, "%s: status must be an HTTP status code such as 401, not %s", where, describeNode(value)).
					WithHint("write the status as a number, as in 'expect: {status: 401}'")
			}
		case value.Kind != yaml.ScalarNode:
			return fail(value.Line, "%s: %s must be a single value, not %s", where, key, describeNode(value)).
				WithHint("see the cases file example in 'cfyauth test --help'")
		}
	}
	return nil
}

// checkStringMap checks a mapping whose values are single values.
func checkStringMap(node *yaml.Node, where, want string, fail failFunc) error {
	if node.Kind != yaml.MappingNode {
		return fail(node.Line, "%s must be %s", where, want).WithHint("see the cases file example in 'cfyauth test --help'")
	}
	for i := 1; i < len(node.Content); i += 2 {
		if value := node.Content[i]; value.Kind != yaml.ScalarNode {
			return fail(value.Line, "%s: %s must be a single value, not %s", where, node.Content[i-1].Value, describeNode(value)).
				WithHint("see the cases file example in 'cfyauth test --help'")
		}
	}
	return nil
}

// describeNode names a YAML value for an error message.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (cs *caseSpec) toCase(index int, dir string, fail failFunc) (Case, error) {
	c := Case{Name: cs.Name}
	if c.Name == "" {
		c.Name = fmt.Sprintf("case %d", index+1)
	}
	caseFail := func(format string, args ...any) *apperr.Error {
		return fail(cs.line, "case %q: %s", c.Name, fmt.Sprintf(format, args...))
	}

	r := Request{User: cs.User, Method: cs.Method, Path: cs.Path, RemoteAddr: cs.RemoteAddr}
	switch {
	case cs.Password != nil && cs.PasswordFile != "":
		return c, caseFail("password and password_file are both set").WithHint("keep one of them")
	case (cs.Password != nil || cs.PasswordFile != "") && cs.User == "":
		return c, caseFail("a password needs a user").WithHint("add 'user:' to the case")
	case cs.Password != nil:
		r.Password = *cs.Password
	case cs.PasswordFile != "":
		secret, err := readSecretFile(resolve(dir, cs.PasswordFile))
		if err != nil {
			return c, caseFail("password_file: %v", err).WithHint("paths in a cases file are relative to its folder")
		}
		r.Password = secret
	}
	switch {
	case cs.Bearer != "" && cs.BearerFile != "":
		return c, caseFail("bearer and bearer_file are both set").WithHint("keep one of them")
	case cs.Bearer != "":
		r.Bearer = cs.Bearer
	case cs.BearerFile != "":
		secret, err := readSecretFile(resolve(dir, cs.BearerFile))
		if err != nil {
			return c, caseFail("bearer_file: %v", err).WithHint("paths in a cases file are relative to its folder")
		}
		if secret == "" {
			return c, caseFail("bearer_file %s is empty", cs.BearerFile).WithHint("put the token in the file")
		}
		r.Bearer = secret
	}
	r.Headers = append(sortedHeaders(cs.Headers, false), sortedHeaders(cs.SecretHeaders, true)...)
	if cs.JSONBody != nil {
		body, err := json.Marshal(cs.JSONBody)
		if err != nil {
			return c, caseFail("json_body cannot be written as JSON: %v", err).WithHint("use string keys in json_body")
		}
		r.Body = body
	}
	if err := r.Check(); err != nil {
		e := apperr.As(err)
		return c, caseFail("%s", e.Message).WithHint("%s", strings.Join(e.Hints, "; "))
	}
	c.Request = r

	if cs.Expect == nil {
		return c, caseFail("no expect").WithHint("add an expect such as 'expect: {user: alice}' or 'expect: {outcome: no_user}'")
	}
	e := &Expectation{Outcome: Outcome(cs.Expect.Outcome), User: cs.Expect.User, Fields: cs.Expect.Fields, Status: cs.Expect.Status}
	if problem, hint := checkExpectation(e); problem != "" {
		return c, caseFail("%s", problem).WithHint("%s", hint)
	}
	c.Expect = e
	return c, nil
}

// checkExpectation returns what is wrong with an expectation and the hint
// to fix it, or "" when it is usable.
func checkExpectation(e *Expectation) (string, string) {
	outcomes := "outcomes: " + outcomeList()
	if e.Outcome != "" && !contains(outcomeNames(), string(e.Outcome)) {
		return fmt.Sprintf("unknown outcome %q in expect", e.Outcome), outcomes
	}
	if e.wantOutcome() == "" {
		return "expect is empty", "name a user, a status or an outcome, as in 'expect: {outcome: no_user}'"
	}
	names := "a user"
	if e.User == "" {
		names = "fields"
	}
	if (e.User != "" || len(e.Fields) > 0) && e.Status != 0 {
		return fmt.Sprintf("expect names both %s and a status, but a request ends with a user or with a response, not both", names),
			"keep user and fields for a request the module authenticates, or status for one it answers with a response"
	}
	if (e.User != "" || len(e.Fields) > 0) && e.wantOutcome() != OutcomeUser {
		return fmt.Sprintf("expect names %s, which needs the outcome user, not %s", names, e.Outcome),
			"drop the outcome, or the user and fields"
	}
	if e.Status != 0 && e.wantOutcome() != OutcomeResponse {
		return fmt.Sprintf("expect names a status, which needs the outcome response, not %s", e.Outcome),
			"drop the outcome, or the status"
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return fmt.Sprintf("status %d in expect is not an HTTP status", e.Status), "use a status from 100 to 599, such as 401"
	}
	return "", ""
}

func outcomeNames() []string {
	names := make([]string, len(Outcomes))
	for i, o := range Outcomes {
		names[i] = string(o)
	}
	return names
}

func outcomeList() string { return strings.Join(outcomeNames(), ", ") }

func sortedHeaders(m map[string]string, secret bool) []Header {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	headers := make([]Header, 0, len(names))
	for _, name := range names {
		headers = append(headers, Header{Name: name, Value: m[name], Secret: secret})
	}
	return headers
}

func resolve(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// readSecretFile reads a password or token file: at most 64 KiB, with one
// trailing line break removed. Errors never contain the content.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file", path)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxSecretFileSize {
		return "", fmt.Errorf("%s is larger than 64 KiB, so it is not a password or token file", path)
	}
	s := strings.TrimSuffix(string(data), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}
