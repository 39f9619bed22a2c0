package oktaprobe

import (
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
		c := clockCheck(sample(tc.off), DefaultMaxClockSkew, tc.m, false)
		if c.Status != tc.want {
			t.Errorf("%s: %s (%s)", tc.name, c.Status, c.Summary)
		}
	}
	if c := clockCheck(sample(time.Hour), DefaultMaxClockSkew, tight, true); c.Status != report.Skip {
		t.Errorf("offline: %s", c.Status)
	}
	if c := clockCheck(nil, DefaultMaxClockSkew, tight, false); c.Status != report.Skip {
		t.Errorf("no sample: %s", c.Status)
	}
}
