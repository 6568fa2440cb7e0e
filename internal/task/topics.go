package task

import "github.com/sluicehq/sluice/topology"

// TopicName is the Kafka name of the internal topic the topology calls
// name ("counts-changelog", "words-repartition"):
// "<application.id>-<name>", as Kafka Streams names them. With no
// application ID the name is left as it is. The runtime and the test
// driver name internal topics with it, and nothing else does.
func TopicName(appID, name string) string {
	if appID == "" {
		return name
	}
	return appID + "-" + name
}

// ChangelogTopic is the Kafka name of the changelog topic of the store of
// spec: "<application.id>-<store>-changelog".
func ChangelogTopic(appID string, spec *topology.StoreSpec) string {
	return TopicName(appID, spec.ChangelogTopic())
}
