// Package connectors holds Sluice's sources and sinks outside the engine:
// for now the embedded Kafka broker that lets every program and test run on
// a bare machine (StartEmbedded), the choice between it and given brokers
// that the examples make (Connect), and CreateTopics, which creates topics
// that do not exist yet.
//
// The embedded broker is franz-go's kfake: an in-process cluster that
// speaks the Kafka protocol on loopback ports. A program started with no
// brokers configured can run against it unchanged, and with a data
// directory its topics, offsets and groups survive a restart.
package connectors
