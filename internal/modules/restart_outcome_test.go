package modules

import (
	"context"
	"testing"
	"time"
)

func TestRecordRestartOutcome(t *testing.T) {
	s := newTestStore(t, "7.0")
	ch := update(t, s, func(tx *Tx) (*Change, error) {
		return tx.Install(src("lambda_auth", goodModule), InstallOptions{ChangeOptions: skip, Enable: true})
	})
	failed := RestartOutcome{At: time.Now().Add(time.Second), Via: "supervisord", FailedPhase: "settle", Failure: "it stopped"}
	healthy := RestartOutcome{At: time.Now().Add(2 * time.Second), Via: "supervisord", Healthy: true}
	if err := s.Update(context.Background(), func(tx *Tx) error {
		if err := tx.RecordRestartOutcome(failed, ch.JournalID); err != nil {
			return err
		}
		res := tx.List()
		if res.LastRestart != nil || res.RestartPending != PendingUnknown {
			t.Errorf("after an unhealthy restart: last restart %v, pending %s; want none and unknown", res.LastRestart, res.RestartPending)
		}
		return tx.RecordRestartOutcome(healthy, ch.JournalID)
	}); err != nil {
		t.Fatal(err)
	}

	var res ListResult
	var history []EntrySummary
	if err := s.View(context.Background(), func(tx *Tx) error {
		res = tx.List()
		var err error
		history, err = tx.History(1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if res.LastRestart == nil || !res.LastRestart.Equal(healthy.At) || res.RestartPending != PendingNo {
		t.Errorf("after a healthy restart: last restart %v, pending %s; want %v and no", res.LastRestart, res.RestartPending, healthy.At)
	}
	if o := res.LastRestartOutcome; o == nil || !o.Healthy || o.Via != "supervisord" {
		t.Errorf("last restart outcome = %+v, want the healthy one", o)
	}
	got := history[0].Restarts
	if len(got) != 2 || got[0].Healthy || got[0].FailedPhase != "settle" || !got[1].Healthy {
		t.Errorf("journal entry %d restarts = %+v, want the failed one, then the healthy one", ch.JournalID, got)
	}

	err := s.View(context.Background(), func(tx *Tx) error { return tx.RecordRestartOutcome(healthy, 0) })
	if err == nil {
		t.Error("RecordRestartOutcome in a read-only session succeeded")
	}
}
