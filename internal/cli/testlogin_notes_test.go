package cli

import (
	"strings"
	"testing"

	"github.com/cfyauth/cfyauth/internal/restapi"
)

func TestNoAuthMethodNoteAdvisesOnlyOtherURLs(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		version *restapi.Version
		advise  bool
		want    string
	}{
		{"REST service, 7.0", restapi.DefaultManagerURL, &restapi.Version{Version: "7.0.4"}, false, "managers before 6.2 do not send it"},
		{"REST service by name", "http://localhost:8100", nil, false, "how the login was authenticated is unknown"},
		{"REST service over IPv6", "http://[::1]:8100", nil, false, "how the login was authenticated is unknown"},
		{"nginx", "https://mgr.example.com", &restapi.Version{Version: "7.0.4"}, true, "nginx removes it"},
		{"5.1 through nginx", "https://mgr.example.com", &restapi.Version{Version: "5.1.2"}, false, "Cloudify 5.1.2 does not send it"},
		{"unparsable version", "https://mgr.example.com", &restapi.Version{Version: "master"}, true, "nginx removes it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			note := noAuthMethodNote(tc.url, tc.version)
			if !strings.Contains(note, tc.want) {
				t.Errorf("note %q does not contain %q", note, tc.want)
			}
			if advises := strings.Contains(note, "--manager-url"); advises != tc.advise {
				t.Errorf("note %q: advises --manager-url %v, want %v", note, advises, tc.advise)
			}
		})
	}
}
