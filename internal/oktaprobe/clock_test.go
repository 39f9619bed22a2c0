package oktaprobe

import (
	"strings"
	"testing"
	"time"

	"github.com/cfyauth/cfyauth/internal/report"
)

func TestClockCheckMarginsAndResolution(t *testing.T) {
	now := time.Now()
	sample := func(off time.Duration) []*dateSample {
		return []*dateSample{{URL: "https://idp.example.test/sso", Server: now.Add(-off), Local: now}}
	}
	tight := margins{Behind: 0, Ahead: 90 * time.Second, FromResponse: true}
	cases := []struct {
		name string
		off  time.Duration
		m    margins
		want report.Status
	}{
		{"in step", 0, tight, report.Pass},
		{"half a second behind with no margin", -500 * time.Millisecond, tight, report.Pass},
		{"five seconds behind with no margin", -5 * time.Second, tight, report.Fail},
		{"a minute ahead within 90s", time.Minute, tight, report.Warn},
		{"two minutes ahead past 90s", 2 * time.Minute, tight, report.Fail},
	}
	for _, tc := range cases {
		c := clockCheck(sample(tc.off), DefaultMaxClockSkew, tc.m, clockSources{Requested: true})
		if c.Status != tc.want {
			t.Errorf("%s: %s (%s)", tc.name, c.Status, c.Summary)
		}
	}
	if c := clockCheck(sample(time.Hour), DefaultMaxClockSkew, tight, clockSources{Offline: true}); c.Status != report.Skip {
		t.Errorf("offline: %s", c.Status)
	}
}

func TestClockCheckHintFitsInputs(t *testing.T) {
	cases := []struct {
		name string
		src  clockSources
		hint string
	}{
		{"nothing given", clockSources{}, "pass --sso-url URL or --metadata https://"},
		{"metadata file", clockSources{MetadataFile: true}, "the metadata as its https:// URL"},
		{"requests failed", clockSources{Requested: true}, "fix the failed sso-url or metadata check"},
	}
	for _, tc := range cases {
		c := clockCheck(nil, DefaultMaxClockSkew, margins{}, tc.src)
		if c.Status != report.Skip {
			t.Errorf("%s: %s", tc.name, c.Status)
		}
		if !strings.Contains(c.Hint, tc.hint) {
			t.Errorf("%s: hint %q, want it to contain %q", tc.name, c.Hint, tc.hint)
		}
	}
	requested := clockCheck(nil, DefaultMaxClockSkew, margins{}, clockSources{Requested: true})
	if strings.Contains(requested.Hint, "--metadata https://") {
		t.Errorf("after a request, the hint still asks for the metadata URL: %q", requested.Hint)
	}
}
