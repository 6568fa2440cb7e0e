package connectors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Connection is where a program runs: the brokers, the state directory to
// give the runtime, and what started here to be released with Close.
type Connection struct {
	// Brokers are the seed brokers.
	Brokers []string
	// StateDir is the state directory for runtime.StateDir.
	StateDir string
	// Where says in words where the brokers are, for messages.
	Where string

	embedded *Embedded
	tmpDir   string
}

// Connect chooses where a program runs, as the examples do: on the
// comma-separated brokers, or, when brokers is empty, on an embedded broker
// started here. An embedded broker keeps its data in
// <stateDir>/embedded-broker when stateDir is set, so that topics and local
// state survive a restart together; without a stateDir both start empty,
// the state in a temporary directory (local state must reflect the topics
// of the broker it was built on). name prefixes the temporary directory.
// The caller must Close the connection.
func Connect(brokers, stateDir, name string) (*Connection, error) {
	c := &Connection{StateDir: stateDir}
	if brokers != "" {
		c.Brokers, c.Where = strings.Split(brokers, ","), "Kafka at "+brokers
		return c, nil
	}
	var dataDir string
	if stateDir != "" {
		dataDir = filepath.Join(stateDir, "embedded-broker")
	} else {
		tmp, err := os.MkdirTemp("", name+"-state-")
		if err != nil {
			return nil, err
		}
		c.tmpDir, c.StateDir = tmp, tmp
	}
	e, err := StartEmbedded(EmbeddedConfig{DataDir: dataDir})
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	c.embedded, c.Brokers, c.Where = e, e.Brokers(), "the embedded broker"
	return c, nil
}

// Close stops the embedded broker, if Connect started one, and removes the
// temporary state directory, if it made one.
func (c *Connection) Close() error {
	if c.embedded != nil {
		c.embedded.Close()
		c.embedded = nil
	}
	if c.tmpDir != "" {
		dir := c.tmpDir
		c.tmpDir = ""
		return os.RemoveAll(dir)
	}
	return nil
}
