package cli

import (
	"context"
	"errors"
	"os"

	"github.com/AlecAivazis/survey/v2"
	"github.com/AlecAivazis/survey/v2/terminal"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// confirmFunc shows a yes/no prompt on the terminal. Tests replace it.
var confirmFunc = surveyConfirm

// canPrompt reports whether a question can be asked: stdin and stderr are
// terminals and --non-interactive is not in effect.
func (a *App) canPrompt() bool {
	return !a.Global.NonInteractive && a.IO.StdinTTY && a.IO.StderrTTY
}

// requireConfirmable stops a command that would need a confirmation nobody
// can give: no --yes and no terminal.
func (a *App) requireConfirmable(what string) error {
	if a.Global.Yes || a.canPrompt() {
		return nil
	}
	return apperr.Usage("confirmation_required", "%s asks for confirmation, and there is no terminal to ask on", what).
		WithHint("pass --yes to confirm without a prompt")
}

// confirm prompts with question unless --yes is set. A "no" stops the
// command with nothing changed.
func (a *App) confirm(question string) error {
	if a.Global.Yes {
		return nil
	}
	if err := a.requireConfirmable("this command"); err != nil {
		return err
	}
	ok, err := confirmFunc(a, question)
	if errors.Is(err, terminal.InterruptErr) {
		return context.Canceled
	}
	if err != nil {
		return apperr.Environment("prompt_failed", "cannot ask for confirmation: %v", err).
			WithHint("pass --yes to confirm without a prompt")
	}
	if !ok {
		return apperr.Failed("not_confirmed", "not confirmed, so nothing was changed").
			WithHint("answer yes, or pass --yes")
	}
	return nil
}

// surveyConfirm shows a survey yes/no prompt on stderr, reading stdin.
func surveyConfirm(a *App, question string) (bool, error) {
	in, inOK := a.IO.In.(*os.File)
	out, outOK := a.IO.ErrOut.(*os.File)
	if !inOK || !outOK {
		return false, errors.New("stdin or stderr is not a terminal file")
	}
	answer := false
	err := survey.AskOne(&survey.Confirm{Message: question, Default: false}, &answer,
		survey.WithStdio(in, out, out))
	return answer, err
}
