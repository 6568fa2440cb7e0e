package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one worker, run again by its supervisor whenever it exits until
// the run stops: after a kill -9 of the fault schedule, after the delay
// the schedule chose; after an exit of its own (a fenced zombie, a fatal
// error), after a second.
type proc struct {
	id   int
	cfg  workerConfig
	exe  string
	logf string

	mu       sync.Mutex
	cmd      *exec.Cmd
	inc      int
	running  bool
	paused   bool
	killed   bool
	delay    time.Duration // restart delay after a kill
	exits    []string      // exits of its own
	stopping bool
	done     chan struct{}
	wake     chan struct{} // ends the restart delay early
	fatal    func(error)   // a worker that cannot run: the run stops
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func newProc(id int, cfg workerConfig, exe, dir string, fatal func(error)) *proc {
	cfg.id = id
	cfg.stateDir = filepath.Join(dir, fmt.Sprintf("state-w%d", id))
	return &proc{id: id, cfg: cfg, exe: exe, logf: filepath.Join(dir, fmt.Sprintf("worker-%d.log", id)),
		done: make(chan struct{}), wake: make(chan struct{}, 1), fatal: fatal}
}

func (p *proc) start() error {
	p.inc++
	cfg := p.cfg
	cfg.incarnation = p.inc
	f, err := os.OpenFile(p.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.exe, cfg.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close()
	if err != nil {
		return fmt.Errorf("start worker %d: %w", p.id, err)
	}
	p.cmd, p.running, p.paused = cmd, true, false
	return nil
}

// supervise runs the worker until stop.
func (p *proc) supervise(ctx context.Context, logf func(string, ...any)) {
	defer close(p.done)
	for {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		if err := p.start(); err != nil {
			p.mu.Unlock()
			logf("%v", err)
			return
		}
		cmd := p.cmd
		p.mu.Unlock()
		err := cmd.Wait()
		p.mu.Lock()
		p.running, p.paused = false, false
		var wait time.Duration
		switch {
		case p.stopping:
			p.mu.Unlock()
			return
		case p.killed:
			p.killed, wait = false, p.delay
		case exitCode(err) == exitConfig:
			p.mu.Unlock()
			logf("worker %d (start %d): configuration refused (%v); see %s", p.id, p.inc, err, p.logf)
			p.fatal(fmt.Errorf("worker %d: configuration refused (log: %s)", p.id, p.logf))
			return
		default:
			p.exits = append(p.exits, fmt.Sprintf("worker %d (start %d) exited: %v", p.id, p.inc, err))
			logf("worker %d (start %d) exited on its own (%v): restarting it in 1s", p.id, p.inc, err)
			wait = time.Second
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		case <-p.wake:
		}
	}
}

// restartNow ends the restart delay of a killed worker.
func (p *proc) restartNow() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// kill sends SIGKILL; the supervisor restarts the worker after delay.
func (p *proc) kill(delay time.Duration) (inc int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running || p.paused || p.stopping {
		return 0, false
	}
	p.killed, p.delay = true, delay
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	return p.inc, true
}

// pause sends SIGSTOP.
func (p *proc) pause() (inc int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running || p.paused || p.stopping {
		return 0, false
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return 0, false
	}
	p.paused = true
	return p.inc, true
}

// resume sends SIGCONT to the incarnation pause stopped.
func (p *proc) resume(inc int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running && p.inc == inc {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.paused = false
	}
}

func (p *proc) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running && !p.paused
}

// stop ends the worker with SIGTERM (a graceful shutdown), SIGKILL after
// timeout, and waits for its supervisor.
func (p *proc) stop(timeout time.Duration) {
	p.mu.Lock()
	p.stopping = true
	if p.running {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	cmd := p.cmd
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(timeout):
		if cmd != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		<-p.done
	}
}
