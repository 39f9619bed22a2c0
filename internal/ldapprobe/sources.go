package ldapprobe

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SourceKind names the kind of place a setting came from.
type SourceKind string

// Source kinds, from the highest precedence to the lowest. A layer read
// from a running manager would sit between SourceFile and SourceDefault.
const (
	SourceFlag    SourceKind = "flag"
	SourceEnv     SourceKind = "environment"
	SourceFile    SourceKind = "settings file"
	SourceManager SourceKind = "manager"
	SourceDefault SourceKind = "default"
	// SourceUnset marks a key that no source set and that has no default.
	SourceUnset SourceKind = "unset"
)

// Source is the place one setting's value came from.
type Source struct {
	Kind SourceKind `json:"kind"`
	// Detail names the flag, variable or file, or describes the default.
	Detail string `json:"detail,omitempty"`
	// rank orders sources: a lower rank wins.
	rank int
}

func (s Source) String() string {
	if s.Detail == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + " " + s.Detail
}

// Layer is one source of settings: flags, the environment, a settings file
// or a manager. Values are keyed by manager key name. A value may be a
// string, bool, number, a list (for ldap_server) or nil, which the manager
// treats as an empty string.
type Layer struct {
	Kind SourceKind
	// Origins names where each key was set inside the layer, such as
	// "--ldap-server" or "CFYAUTH_LDAP_SERVER"; when a key has no entry,
	// Detail is used.
	Origins map[string]string
	Detail  string
	Values  map[string]any
}

// Set records one value and where it came from.
func (l *Layer) Set(key string, value any, origin string) {
	if l.Values == nil {
		l.Values = map[string]any{}
	}
	if l.Origins == nil {
		l.Origins = map[string]string{}
	}
	l.Values[key] = value
	if origin != "" {
		l.Origins[key] = origin
	}
}

func (l *Layer) source(key string, rank int) Source {
	detail := l.Detail
	if o, ok := l.Origins[key]; ok {
		detail = o
	}
	return Source{Kind: l.Kind, Detail: detail, rank: rank}
}

// SettingsError is an invalid value in one of the settings sources, or a
// combination of values the manager rejects.
type SettingsError struct {
	Key    string
	Source Source
	Reason string
	// Hint names the flag or key to change.
	Hint string
}

func (e *SettingsError) Error() string {
	if e.Source.Kind == "" {
		return fmt.Sprintf("invalid %s: %s", e.Key, e.Reason)
	}
	return fmt.Sprintf("invalid %s from %s: %s", e.Key, e.Source, e.Reason)
}

// EnvLayer reads every CFYAUTH_LDAP_* variable through getenv. An empty
// variable counts as unset.
func EnvLayer(getenv func(string) string) Layer {
	l := Layer{Kind: SourceEnv}
	for _, k := range Keys {
		if v := getenv(k.Env()); v != "" {
			l.Set(k.Name, v, k.Env())
		}
	}
	return l
}

// LoadFile reads a settings file in YAML or JSON with the manager's key
// names. Keys that do not start with ldap_ are returned as ignored so the
// caller can warn; an unknown ldap_ key is an error because it is most
// likely a misspelt one.
func LoadFile(path string) (Layer, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Layer{}, nil, fmt.Errorf("read settings file: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile parses the contents of a settings file; path only names it in
// messages.
func ParseFile(path string, data []byte) (Layer, []string, error) {
	l := Layer{Kind: SourceFile, Detail: path}
	doc := map[string]any{}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return l, nil, &SettingsError{Key: "settings file", Reason: fmt.Sprintf("%s is not YAML or JSON: %v", path, err),
			Hint: "fix the file; it maps manager keys such as ldap_server to values"}
	}
	var ignored []string
	for key, value := range doc {
		if _, ok := LookupKey(key); ok {
			l.Set(key, value, "")
			continue
		}
		if strings.HasPrefix(key, "ldap_") && key != "ldap_group_members_filter" {
			return l, nil, &SettingsError{Key: key, Source: Source{Kind: SourceFile, Detail: path},
				Reason: "unknown LDAP key", Hint: "use one of the manager's keys: " + keyNames()}
		}
		ignored = append(ignored, key)
	}
	sort.Strings(ignored)
	return l, ignored, nil
}

func keyNames() string {
	names := make([]string, 0, len(Keys))
	for _, k := range Keys {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// Resolve merges layers, given from the highest precedence to the lowest,
// into effective settings, then fills in the manager's defaults for every
// key left empty. A CA file named by ldap_ca_path is read here.
func Resolve(layers []Layer) (*Settings, error) {
	s := &Settings{Sources: map[string]Source{}, Raw: map[string]string{}}
	picked := map[string]any{}
	for _, k := range Keys {
		for rank, l := range layers {
			v, ok := l.Values[k.Name]
			if !ok {
				continue
			}
			picked[k.Name] = v
			s.Sources[k.Name] = l.source(k.Name, rank)
			break
		}
	}

	for _, k := range Keys {
		v, ok := picked[k.Name]
		if !ok {
			continue
		}
		if err := s.assign(k, v); err != nil {
			return nil, &SettingsError{Key: k.Name, Source: s.Sources[k.Name], Reason: err.Error(), Hint: fixHint(k)}
		}
	}
	if err := s.loadCA(); err != nil {
		return nil, err
	}
	s.applyDefaults()
	return s, nil
}

func fixHint(k KeyInfo) string {
	if k.Flag != "" {
		return fmt.Sprintf("set a valid value with --%s, %s or %s in the settings file", k.Flag, k.Env(), k.Name)
	}
	return fmt.Sprintf("set a valid value with %s or %s in the settings file", k.Env(), k.Name)
}

// assign parses one raw value into its field.
func (s *Settings) assign(k KeyInfo, v any) error {
	if k.kind == kindList {
		list, err := toList(v)
		if err != nil {
			return err
		}
		s.Servers = list
		s.Raw[k.Name] = strings.Join(list, " ")
		return nil
	}
	text, err := toText(v)
	if err != nil {
		return err
	}
	if k.kind != kindSecret {
		s.Raw[k.Name] = text
	}
	switch k.kind {
	case kindSecret:
		s.Password = Secret(text)
	case kindBool:
		b, err := parseManagerBool(v)
		if err != nil {
			return err
		}
		s.IsActiveDirectory = b
	case kindInt:
		n, err := parseManagerInt(v)
		if err != nil {
			return err
		}
		s.NestedLevels = n
	case kindSeconds:
		d, err := ParseSeconds(text)
		if err != nil {
			return err
		}
		s.Timeout = d
	case kindPEM:
		s.CAPEM = text
	default:
		s.setString(k.Name, text)
	}
	return nil
}

func (s *Settings) setString(key, text string) {
	switch key {
	case KeyUsername:
		s.Username = text
	case KeyDomain:
		s.Domain = text
	case KeyDNExtra:
		s.DNExtra = text
	case KeyCAPath:
		s.CAPath = text
	case KeyBaseDN:
		s.BaseDN = text
	case KeyGroupDN:
		s.GroupDN = text
	case KeyBindFormat:
		s.BindFormat = text
	case KeyUserFilter:
		s.UserFilter = text
	case KeyGroupMemberFilter:
		s.GroupMemberFilter = text
	case KeyAttributeEmail:
		s.AttributeEmail = text
	case KeyAttributeFirstName:
		s.AttributeFirstName = text
	case KeyAttributeLastName:
		s.AttributeLastName = text
	case KeyAttributeUID:
		s.AttributeUID = text
	case KeyAttributeGroupMembership:
		s.AttributeGroupMembership = text
	}
}

// toText converts a scalar to the text the manager would store; nil becomes
// the empty string, as the manager turns null into ”.
func toText(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool:
		return strconv.FormatBool(t), nil
	case int:
		return strconv.Itoa(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case uint64:
		return strconv.FormatUint(t, 10), nil
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("expected a single value, got %s", describe(v))
}

func describe(v any) string {
	switch v.(type) {
	case []any, []string:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// toList accepts a list of URLs, or one string with URLs separated by
// spaces or commas (the form libldap's ldap_initialize accepts).
func toList(v any) ([]string, error) {
	var items []string
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		items = []string{t}
	case []string:
		items = t
	case []any:
		for _, e := range t {
			text, err := toText(e)
			if err != nil {
				return nil, fmt.Errorf("every server in the list must be a URL string, got %s", describe(e))
			}
			items = append(items, text)
		}
	default:
		return nil, fmt.Errorf("expected a URL or a list of URLs, got %s", describe(v))
	}
	var out []string
	for _, item := range items {
		for _, f := range strings.FieldsFunc(item, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			out = append(out, f)
		}
	}
	return out, nil
}

// parseManagerBool accepts what the manager's verify_and_convert_bool
// accepts: a boolean, or the text true or false in any case. An empty value
// is false.
func parseManagerBool(v any) (bool, error) {
	switch t := v.(type) {
	case nil:
		return false, nil
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(t) {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
		return false, fmt.Errorf("must be true or false, got %q", t)
	}
	return false, fmt.Errorf("must be true or false, got %v", v)
}

// parseManagerInt converts like Python's int(): whole numbers and decimal
// text; a float is truncated toward zero. The result must be at least 1.
func parseManagerInt(v any) (int, error) {
	var n int
	switch t := v.(type) {
	case nil:
		return DefaultNestedLevels, nil
	case int:
		n = t
	case int64:
		n = int(t)
	case uint64:
		if t > math.MaxInt32 {
			return 0, fmt.Errorf("must be a whole number of at least 1, got %d", t)
		}
		n = int(t)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t) > math.MaxInt32 {
			return 0, fmt.Errorf("must be a whole number of at least 1, got %v", t)
		}
		n = int(t)
	case string:
		text := strings.TrimSpace(t)
		if text == "" {
			return DefaultNestedLevels, nil
		}
		parsed, err := strconv.Atoi(text)
		if err != nil {
			return 0, fmt.Errorf("must be a whole number of at least 1, got %q", t)
		}
		n = parsed
	default:
		return 0, fmt.Errorf("must be a whole number of at least 1, got %s", describe(v))
	}
	if n < 1 {
		return 0, fmt.Errorf("must be a whole number of at least 1, got %d", n)
	}
	return n, nil
}

// ParseSeconds reads a timeout: a Go duration such as 5s or 500ms, or a
// plain number of seconds as the manager stores ldap_timeout (5.0).
func ParseSeconds(text string) (time.Duration, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return DefaultTimeout, nil
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		if math.IsNaN(f) || f > 86400 {
			return 0, fmt.Errorf("must be a positive duration such as 5s, got %q", text)
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		parsed, err := time.ParseDuration(text)
		if err != nil {
			return 0, fmt.Errorf("must be a duration such as 5s or a number of seconds, got %q", text)
		}
		d = parsed
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be a positive duration such as 5s, got %q", text)
	}
	return d, nil
}

// loadCA reads ldap_ca_path unless ldap_ca_cert comes from a source of
// higher precedence, and checks that the PEM text holds a certificate.
func (s *Settings) loadCA() error {
	pathSrc := s.Sources[KeyCAPath]
	certSrc, hasCert := s.Sources[KeyCACert]
	usePath := s.CAPath != "" && (!hasCert || s.CAPEM == "" || pathSrc.rank <= certSrc.rank)
	if usePath {
		data, err := os.ReadFile(s.CAPath)
		if err != nil {
			reason := fmt.Sprintf("cannot read CA file %s: %v", s.CAPath, unwrapPathError(err))
			return &SettingsError{Key: KeyCAPath, Source: pathSrc, Reason: reason,
				Hint: "pass the PEM file of the CA that signed the LDAP server's certificate with --ldap-ca-path"}
		}
		s.CAPEM = string(data)
		if _, err := ParseCAPEM(s.CAPEM); err != nil {
			return &SettingsError{Key: KeyCAPath, Source: pathSrc, Reason: fmt.Sprintf("%s: %v", s.CAPath, err),
				Hint: "pass a PEM file that holds a CERTIFICATE block"}
		}
		// The PEM text is the file's contents, so it comes from where
		// the path came from.
		detail := "contents of the CA file"
		if pathSrc.Detail != "" {
			detail = pathSrc.Detail + " (contents of the CA file)"
		}
		s.Sources[KeyCACert] = Source{Kind: pathSrc.Kind, Detail: detail, rank: pathSrc.rank}
		return nil
	}
	if s.CAPEM != "" {
		if _, err := ParseCAPEM(s.CAPEM); err != nil {
			return &SettingsError{Key: KeyCACert, Source: certSrc, Reason: err.Error(),
				Hint: "ldap_ca_cert must hold PEM text with a CERTIFICATE block"}
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParseCAPEM returns a pool with every certificate in the PEM text.
func ParseCAPEM(text string) (*x509.CertPool, error) {
	certs, err := ParseCACertificates(text)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, nil
}

// ParseCACertificates returns every certificate in the PEM text; blocks of
// other types are skipped.
func ParseCACertificates(text string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return certs, nil
}

// applyDefaults fills every empty key with the manager's default, which
// depends on ldap_is_active_directory for the bind format and user filter.
func (s *Settings) applyDefaults() {
	def := func(key string, field *string, value, why string) {
		if *field != "" {
			return
		}
		*field = value
		if _, set := s.Sources[key]; !set || s.Raw[key] == "" {
			s.Sources[key] = Source{Kind: SourceDefault, Detail: why, rank: math.MaxInt}
		}
	}
	kind := "non-AD"
	bindFormat, userFilter := DefaultBindFormat, DefaultUserFilter
	if s.IsActiveDirectory {
		kind = "AD"
		bindFormat, userFilter = DefaultBindFormatAD, DefaultUserFilterAD
	}
	def(KeyBaseDN, &s.BaseDN, DomainDN(s.Domain), "the domain as dc= parts")
	def(KeyGroupDN, &s.GroupDN, DefaultGroupDN, "")
	def(KeyBindFormat, &s.BindFormat, bindFormat, kind)
	def(KeyUserFilter, &s.UserFilter, userFilter, kind)
	def(KeyGroupMemberFilter, &s.GroupMemberFilter, DefaultGroupMemberFilter, "")
	def(KeyAttributeEmail, &s.AttributeEmail, DefaultAttributeEmail, "")
	def(KeyAttributeFirstName, &s.AttributeFirstName, DefaultAttributeFirstName, "")
	def(KeyAttributeLastName, &s.AttributeLastName, DefaultAttributeLastName, "")
	def(KeyAttributeUID, &s.AttributeUID, DefaultAttributeUID, "")
	def(KeyAttributeGroupMembership, &s.AttributeGroupMembership, DefaultAttributeGroupMembership, "")
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
		s.Sources[KeyTimeout] = Source{Kind: SourceDefault, rank: math.MaxInt}
	}
	if s.NestedLevels == 0 {
		s.NestedLevels = DefaultNestedLevels
		s.Sources[KeyNestedLevels] = Source{Kind: SourceDefault, rank: math.MaxInt}
	}
	// false is the manager's default, so an unset flag is a default like
	// the others, not an unset key.
	if _, set := s.Sources[KeyIsActiveDirectory]; !set {
		s.Sources[KeyIsActiveDirectory] = Source{Kind: SourceDefault, rank: math.MaxInt}
	}
	for _, k := range Keys {
		if _, ok := s.Sources[k.Name]; !ok {
			s.Sources[k.Name] = Source{Kind: SourceUnset, rank: math.MaxInt}
		}
	}
}
