package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version, commit and date are set at release build time with
// -ldflags "-X github.com/cfyauth/cfyauth/internal/cli.version=…".
var (
	version = ""
	commit  = ""
	date    = ""
)

// VersionInfo is the build stamp of this binary.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// buildVersion returns the stamped version, or what the Go build info holds
// when the binary was built without ldflags (go install, go build).
func buildVersion() VersionInfo {
	info := VersionInfo{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.Version != "" {
		return info
	}
	info.Version = "dev"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		case "vcs.modified":
			if s.Value == "true" && info.Commit != "" {
				info.Commit += "-dirty"
			}
		}
	}
	return info
}

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the cfyauth version",
		Args:  noArgs,
		Example: `  cfyauth version
  cfyauth version -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := buildVersion()
			if app.JSON() {
				return app.WriteJSON(info)
			}
			app.Printf("cfyauth %s\n", info.Version)
			if info.Commit != "" {
				app.Printf("commit: %s\n", info.Commit)
			}
			if info.Date != "" {
				app.Printf("date: %s\n", info.Date)
			}
			app.Printf("go: %s %s\n", info.GoVersion, info.Platform)
			return nil
		},
	}
}
