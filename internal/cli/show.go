package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
	"github.com/cfyauth/cfyauth/internal/report"
)

// defaultShowHistory is how many journal entries show lists by default.
const defaultShowHistory = 10

// ShowOptions are the inputs of 'cfyauth show'.
type ShowOptions struct {
	Name string
	// History is how many of the newest journal entries to list; 0 lists
	// every one.
	History int
}

// showOutput is the JSON document of 'cfyauth show'.
type showOutput struct {
	modules.ShowResult
	// HistoryOmitted counts older journal entries left out by --history.
	HistoryOmitted int      `json:"history_omitted,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
}

func newShowCmd(app *App, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one module in full: receipt, checks, files and history",
		Long: `Show one module in full: its state, where its file is in the loaded folder
and in the store, its receipt (source, sha256, who installed it and when,
whether validation was skipped), the cached validation checks, every
version kept in the store, and the newest journal entries that changed it
(10 unless --history says otherwise).

Exit status: 0 shown, 2 unknown module or usage error, 3 lock held,
permission denied or no manager layout.`,
		Example: `  cfyauth show my_auth
  cfyauth show my_auth --history 0
  cfyauth show okta_authentication -o json`,
		Args:              exactArgs(1, "one module NAME"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesAll, oneName, noFiles),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.History < 0 {
				return apperr.Usage("invalid_flag", "--history %d is negative", opts.History).
					WithHint("pass how many journal entries to list, or --history 0 for all of them")
			}
			if runF != nil {
				return runF(opts)
			}
			return runShow(cmd, app, opts)
		},
	}
	cmd.Flags().IntVar(&opts.History, "history", defaultShowHistory, "how many of the newest journal entries to list; 0 lists all")
	return cmd
}

func runShow(cmd *cobra.Command, app *App, opts *ShowOptions) error {
	name := opts.Name
	store, err := openStore(app)
	if err != nil {
		return err
	}
	var res modules.ShowResult
	var warnings []string
	err = store.View(cmd.Context(), func(tx *modules.Tx) error {
		warnings = tx.Warnings()
		var err error
		res, err = tx.Show(name)
		return err
	})
	for _, w := range warnings {
		app.Warnf("%s", w)
	}
	if err != nil {
		return err
	}
	omitted := 0
	if opts.History > 0 && len(res.History) > opts.History {
		omitted = len(res.History) - opts.History
		res.History = res.History[:opts.History]
	}
	if app.JSON() {
		return app.WriteJSON(showOutput{ShowResult: res, HistoryOmitted: omitted, Warnings: warnings})
	}
	return renderShow(app, res, omitted)
}

func renderShow(app *App, res modules.ShowResult, omitted int) error {
	m := res.Module
	w := tabwriter.NewWriter(app.IO.Out, 0, 4, 2, ' ', 0)
	field := func(key, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s:\t%s\n", key, value)
		}
	}

	field("name", m.Name)
	state := string(m.State)
	if m.Active != nil {
		state += map[bool]string{true: " (active)", false: " (inactive)"}[*m.Active]
	}
	field("state", state)
	field("kind", m.Kind)
	field("sha256", m.SHA256)
	field("file sha256", m.FileSHA256)
	field("file", m.Path)
	field("stored copy", m.StorePath)
	if r := m.Receipt; r != nil {
		field("source", r.Source)
		field("installed", fmt.Sprintf("%s by %s", formatTime(r.InstalledAt), r.InstalledBy))
		if r.EnabledAt != nil {
			field("enabled since", formatTime(*r.EnabledAt))
		}
		if r.SkippedValidation {
			field("validation", "skipped at install (--skip-validation)")
		}
	}
	if v := m.Validation; v != nil {
		field("validity", fmt.Sprintf("%s (Python %s, validator %d, checked %s)", v.Status, v.Python, v.ValidatorVersion, formatTime(v.CheckedAt)))
	} else {
		field("validity", m.Validity)
	}
	field("restart pending", m.RestartPending)
	field("note", m.Note)
	if err := w.Flush(); err != nil {
		return err
	}

	if m.Validation != nil && len(m.Validation.Checks) > 0 {
		fmt.Fprintln(app.IO.Out)
		if err := report.RenderTable(app.IO.Out, m.Validation.Checks, app.Global.Verbose > 0); err != nil {
			return err
		}
	}

	if len(res.Versions) > 0 {
		fmt.Fprintln(app.IO.Out, "\nversions in the store:")
		for _, v := range res.Versions {
			current := ""
			if v.Current {
				current = " (current)"
			}
			fmt.Fprintf(app.IO.Out, "  %s  stored %s%s\n", v.SHA256, formatTime(v.StoredAt), current)
		}
	}

	if len(res.History) > 0 {
		fmt.Fprintln(app.IO.Out, "\nhistory (newest first):")
		renderHistoryLines(app.IO.Out, res.History)
	}
	if omitted > 0 {
		entries := "entries"
		if omitted == 1 {
			entries = "entry"
		}
		app.Infof("%d older journal %s of %s not listed; pass --history 0 to list all", omitted, entries, res.Module.Name)
	}
	return nil
}

func renderHistoryLines(out io.Writer, items []modules.EntrySummary) {
	for _, h := range items {
		fmt.Fprintf(out, "  #%d  %s  %s %s by %s (%s)\n", h.ID, formatTime(h.StartedAt), h.Op, strings.Join(h.Names, " "), h.User, h.Status)
	}
}

func formatTime(t time.Time) string {
	return t.Local().Format(time.DateTime)
}
