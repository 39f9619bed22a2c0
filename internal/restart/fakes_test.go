package restart

import (
	"context"
	"sync"
	"time"
)

// fakeClock advances only when the gate sleeps, so waits of seconds take
// no time in a test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// fakeUnit is a service as a fake systemd reports it. Its behaviour after a
// restart is scripted by afterRestart, which receives the time since the
// restart on the fake clock.
type fakeUnit struct {
	active, sub string
	pid         uint32
	invocation  []byte
	nRestarts   uint32
	mainStartUS uint64
	result      string
	exitStatus  int32

	// afterRestart updates the unit for the time since the last restart.
	afterRestart func(u *fakeUnit, since time.Duration)
	restartedAt  time.Time
	restarted    bool
}

// fakeBus is a systemd that a test scripts: its units, the job result each
// restart gets, and whether it is as old as systemd 219.
type fakeBus struct {
	mu    sync.Mutex
	clock *fakeClock
	units map[string]*fakeUnit
	// jobResult is sent for each restart; "" sends none, so the job never
	// finishes.
	jobResult string
	// restartErr is returned by RestartUnitContext.
	restartErr error
	// old leaves out InvocationID and NRestarts, as systemd 219 does.
	old bool
	// sameProcess keeps PID, invocation and start time over a restart.
	sameProcess bool
	nextPID     uint32
	restarts    int
}

func newFakeBus(clock *fakeClock) *fakeBus {
	return &fakeBus{clock: clock, units: map[string]*fakeUnit{}, jobResult: "done", nextPID: 1000}
}

func (b *fakeBus) addRunning(name string) *fakeUnit {
	u := &fakeUnit{active: "active", sub: "running", pid: 500, invocation: []byte{1, 2, 3, 4},
		mainStartUS: uint64(b.clock.Now().Add(-time.Hour).UnixMicro()), result: "success"}
	b.units[name] = u
	return u
}

func (b *fakeBus) RestartUnitContext(ctx context.Context, name, mode string, ch chan<- string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restartErr != nil {
		return 0, b.restartErr
	}
	u := b.units[name]
	b.restarts++
	if !b.sameProcess {
		b.nextPID++
		u.pid = b.nextPID
		u.invocation = []byte{byte(b.nextPID), 9, 9, 9}
		u.mainStartUS = uint64(b.clock.Now().UnixMicro())
		u.nRestarts = 0
	}
	u.active, u.sub, u.result = "active", "running", "success"
	u.restartedAt, u.restarted = b.clock.Now(), true
	if ch != nil && b.jobResult != "" {
		ch <- b.jobResult
	}
	return 42, nil
}

func (b *fakeBus) unit(name string) *fakeUnit {
	u, ok := b.units[name]
	if !ok {
		return nil
	}
	if u.restarted && u.afterRestart != nil {
		u.afterRestart(u, b.clock.Now().Sub(u.restartedAt))
	}
	return u
}

func (b *fakeBus) GetUnitPropertiesContext(ctx context.Context, name string) (map[string]any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.unit(name)
	if u == nil {
		return map[string]any{"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead"}, nil
	}
	props := map[string]any{"LoadState": "loaded", "ActiveState": u.active, "SubState": u.sub,
		"ActiveEnterTimestamp": u.mainStartUS, "Description": "fake " + name}
	if !b.old {
		props["InvocationID"] = u.invocation
	}
	return props, nil
}

func (b *fakeBus) GetUnitTypePropertiesContext(ctx context.Context, name, unitType string) (map[string]any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.unit(name)
	props := map[string]any{"MainPID": u.pid, "ExecMainStartTimestamp": u.mainStartUS,
		"Result": u.result, "ExecMainStatus": u.exitStatus}
	if !b.old {
		props["NRestarts"] = u.nRestarts
	}
	return props, nil
}

func (b *fakeBus) Close() {}

// crashAfter scripts a unit whose main process exits with status 1 the
// given time after each restart.
func crashAfter(d time.Duration) func(*fakeUnit, time.Duration) {
	return func(u *fakeUnit, since time.Duration) {
		if since >= d {
			u.active, u.sub, u.pid, u.result, u.exitStatus = "failed", "failed", 0, "exit-code", 1
		}
	}
}

// flapEvery scripts a unit that systemd restarts by its Restart= policy
// every period after the manual restart.
func flapEvery(period time.Duration) func(*fakeUnit, time.Duration) {
	base := uint32(0)
	return func(u *fakeUnit, since time.Duration) {
		n := uint32(since / period)
		if n > u.nRestarts-base {
			u.nRestarts = base + n
			u.pid = 2000 + n
		}
	}
}

// fakeHTTP returns responses to health requests from a script keyed by path.
type fakeHTTP struct {
	mu      sync.Mutex
	clock   *fakeClock
	respond func(path string, since time.Duration, creds *Credentials) (HTTPResponse, error)
	start   time.Time
	calls   []string
}

func (h *fakeHTTP) Get(ctx context.Context, url string, creds *Credentials) (HTTPResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	path := url[len(baseURL(url)):]
	h.calls = append(h.calls, path)
	return h.respond(path, h.clock.Now().Sub(h.start), creds)
}
