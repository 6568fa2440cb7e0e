package runtime

import "github.com/sluicehq/sluice/operators"

// changelogWriter is the task.ChangelogWriter of the runtime's tasks: it
// produces changelog records through the instance's producer, failing a
// write once a send failed (at-least-once cannot go on past a lost
// record).
type changelogWriter struct {
	p *producer
	r *runner // the task's: what it logs while it restores waits (sendFor)
}

func (w changelogWriter) WriteChangelog(topic string, partition int32, key, value []byte, headers []operators.Header, ts int64) error {
	if err := w.p.err(); err != nil {
		return err
	}
	w.p.sendChangelog(w.r, topic, partition, key, value, headers, ts)
	return nil
}
