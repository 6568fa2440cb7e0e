package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/topology"
)

// AuthorizationError reports an operation on a Kafka resource that the
// brokers' ACLs do not allow the App's principal: the ACL to add is
// Principal, Operation on ResourceType Resource. Run returns it at
// start-up, where it checks the ACLs an application needs
// (docs/security.md), or later when Kafka refuses a request.
type AuthorizationError struct {
	// ResourceType is Kafka's name of the resource type: TOPIC, GROUP,
	// TRANSACTIONAL_ID or CLUSTER.
	ResourceType string
	// Resource is the resource's name: the topic, the group (the
	// application ID), the transactional ID, or kafka-cluster.
	Resource string
	// Operation is Kafka's name of the ACL operation the App needs: READ,
	// WRITE, CREATE, DELETE, DESCRIBE, IDEMPOTENT_WRITE.
	Operation string
	// Principal is who the App authenticated as (User:<name> with SASL);
	// empty when it depends on the broker's listener (TLS without SASL).
	Principal string
	// Err is Kafka's error, or nil when the start-up check found the
	// operation missing from the resource's authorized operations.
	Err error
}

// Error implements error.
func (e *AuthorizationError) Error() string {
	who := e.Principal
	if who == "" {
		who = "the application's principal"
	}
	msg := fmt.Sprintf("sluice: not authorized: %s may not %s %s %s: an ACL must allow it (see docs/security.md)",
		who, e.Operation, e.ResourceType, e.Resource)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns Kafka's error.
func (e *AuthorizationError) Unwrap() error { return e.Err }

func (a *App) authError(rtype kmsg.ACLResourceType, name string, op kmsg.ACLOperation, err error) *AuthorizationError {
	return &AuthorizationError{ResourceType: rtype.String(), Resource: name, Operation: op.String(), Principal: a.cfg.principal(), Err: err}
}

// isAuthError reports Kafka's authorization errors.
func isAuthError(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// Access check at start-up. Kafka's errors do not always say which
// resource was refused (kadm's metadata answers a refused topic with an
// AuthError naming none; a producer refused WRITE on a topic fails only at
// its first send, long after start-up), and a normal user may not read
// the ACLs (DescribeAcls needs DESCRIBE on the cluster). So Run asks the
// brokers what the principal may do: a Metadata request with
// include_topic_authorized_operations for the topics, a DescribeGroups
// with include_authorized_operations for the group, and compares with
// what the application needs:
//
//	source and global topics       READ
//	sink topics, dead-letter topic WRITE
//	internal topics (prefixed)     CREATE when missing, READ, WRITE;
//	                               DELETE on repartition topics (purged)
//	group <application ID>         READ
//	transactional ID (ExactlyOnce) WRITE (checked by InitProducerID)
//
// A topic the principal may not even DESCRIBE comes back as
// TOPIC_AUTHORIZATION_FAILED and is reported with the operation the App
// needs (READ implies DESCRIBE, and so does WRITE).

// topicOps are the operations needed on a topic, in the order they are
// reported.
type topicOps map[string][]kmsg.ACLOperation

func (n topicOps) add(topic string, op kmsg.ACLOperation) {
	if !slices.Contains(n[topic], op) {
		n[topic] = append(n[topic], op)
	}
}

// externalTopicOps are the operations needed on the topics the
// application does not own.
func (a *App) externalTopicOps() (topicOps, []string) {
	need := topicOps{}
	var order []string
	add := func(t string, op kmsg.ACLOperation) {
		if _, ok := need[t]; !ok {
			order = append(order, t)
		}
		need.add(t, op)
	}
	for _, t := range a.topo.SourceTopics() {
		add(t, kmsg.ACLOperationRead)
	}
	for _, t := range a.topo.GlobalTopics() {
		add(t, kmsg.ACLOperationRead)
	}
	for _, st := range a.topo.SubTopologies() {
		for _, n := range st.Nodes {
			if n.Kind == topology.Sink && !n.Internal {
				for _, t := range n.Topics {
					add(t, kmsg.ACLOperationWrite)
				}
			}
		}
	}
	if a.cfg.deadLetter != "" {
		add(a.cfg.deadLetter, kmsg.ACLOperationWrite)
	}
	return need, order
}

// topicAccess describes topics with their authorized operations: per
// topic, nil (the topic does not exist), or its operations; a topic the
// principal may not describe is an *AuthorizationError naming the first
// operation need lists for it.
func (a *App) topicAccess(ctx context.Context, topics []string, need topicOps) (map[string][]kmsg.ACLOperation, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.IncludeTopicAuthorizedOperations = true
	req.AllowAutoTopicCreation = false
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, a.admin)
	if err != nil {
		return nil, &BrokerError{Brokers: a.brokers, Err: err}
	}
	ops := map[string][]kmsg.ACLOperation{}
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		t := *rt.Topic
		err := kerr.ErrorForCode(rt.ErrorCode)
		switch {
		case err == nil:
			ops[t] = kadm.DecodeACLOperations(rt.AuthorizedOperations)
			if ops[t] == nil {
				ops[t] = []kmsg.ACLOperation{} // existing, operations unknown
			}
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			op := kmsg.ACLOperationDescribe
			if len(need[t]) > 0 {
				op = need[t][0]
			}
			return nil, a.authError(kmsg.ACLResourceTypeTopic, t, op, err)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			ops[t] = nil
		default:
			return nil, fmt.Errorf("sluice: describe topic %s: %w", t, err)
		}
	}
	return ops, nil
}

// checkTopicOps compares the authorized operations of topics with those
// needed. Operations unknown (a broker that does not report them) pass:
// Kafka refuses the request itself later.
func (a *App) checkTopicOps(order []string, need topicOps, have map[string][]kmsg.ACLOperation) error {
	for _, t := range order {
		ops, ok := have[t]
		if !ok || ops == nil || len(ops) == 0 {
			continue
		}
		if slices.Contains(ops, kmsg.ACLOperationAll) {
			continue
		}
		for _, op := range need[t] {
			if !slices.Contains(ops, op) {
				return a.authError(kmsg.ACLResourceTypeTopic, t, op, nil)
			}
		}
	}
	return nil
}

// checkExternalAccess checks the operations on the topics the application
// reads and writes but does not own. Topics that do not exist are left to
// planTopics (a missing source) and to the sinks.
func (a *App) checkExternalAccess(ctx context.Context) error {
	need, order := a.externalTopicOps()
	if len(order) == 0 {
		return nil
	}
	have, err := a.topicAccess(ctx, order, need)
	if err != nil {
		return err
	}
	return a.checkTopicOps(order, need, have)
}

// internalTopicOps are the operations needed on the internal topics
// after their creation.
func (a *App) internalTopicOps(l *layout) topicOps {
	need := topicOps{}
	for _, t := range l.internal {
		need.add(t, kmsg.ACLOperationRead)
		need.add(t, kmsg.ACLOperationWrite)
		if l.kinds[t] == topology.Repartition {
			need.add(t, kmsg.ACLOperationDelete)
		}
	}
	return need
}

// checkGroupAccess checks READ on the group. A group that does not exist
// yet is described without its authorized operations by some brokers:
// then the join itself is the check (loop maps its refusal).
func (a *App) checkGroupAccess(ctx context.Context) error {
	for {
		err := a.describeGroupAccess(ctx)
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		// A new cluster's group coordinator (the offsets topic) may not
		// be ready yet: COORDINATOR_NOT_AVAILABLE until it is.
		select {
		case <-ctx.Done():
			return &BrokerError{Brokers: a.brokers, Err: fmt.Errorf("describe group %s: %w", a.cfg.appID, err)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describeGroupAccess is one attempt of checkGroupAccess; a retriable
// error is returned as it is.
func (a *App) describeGroupAccess(ctx context.Context) error {
	group := a.cfg.appID
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	req.IncludeAuthorizedOperations = true
	shards := a.admin.RequestSharded(ctx, req)
	for _, sh := range shards {
		if sh.Err != nil {
			if errors.Is(sh.Err, kerr.GroupAuthorizationFailed) {
				return a.authError(kmsg.ACLResourceTypeGroup, group, kmsg.ACLOperationRead, sh.Err)
			}
			if kerr.IsRetriable(sh.Err) {
				return sh.Err
			}
			return &BrokerError{Brokers: a.brokers, Err: fmt.Errorf("describe group %s: %w", group, sh.Err)}
		}
		resp := sh.Resp.(*kmsg.DescribeGroupsResponse)
		for _, g := range resp.Groups {
			if g.Group != group {
				continue
			}
			err := kerr.ErrorForCode(g.ErrorCode)
			if errors.Is(err, kerr.GroupAuthorizationFailed) {
				return a.authError(kmsg.ACLResourceTypeGroup, group, kmsg.ACLOperationRead, err)
			}
			if kerr.IsRetriable(err) {
				return err
			}
			if err != nil {
				continue // e.g. GROUP_ID_NOT_FOUND: the join checks
			}
			ops := kadm.DecodeACLOperations(g.AuthorizedOperations)
			if len(ops) > 0 && !slices.Contains(ops, kmsg.ACLOperationRead) && !slices.Contains(ops, kmsg.ACLOperationAll) {
				return a.authError(kmsg.ACLResourceTypeGroup, group, kmsg.ACLOperationRead, nil)
			}
		}
	}
	return nil
}

// asAuthError maps Kafka's authorization error err, met while doing op on
// a resource, to an *AuthorizationError; other errors are returned as
// they are.
func (a *App) asAuthError(err error, rtype kmsg.ACLResourceType, name string, op kmsg.ACLOperation) error {
	if err == nil || !isAuthError(err) {
		return err
	}
	if _, ok := errors.AsType[*AuthorizationError](err); ok {
		return err
	}
	switch {
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return a.authError(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationIdempotentWrite, err)
	case errors.Is(err, kerr.GroupAuthorizationFailed) && rtype != kmsg.ACLResourceTypeGroup:
		return a.authError(kmsg.ACLResourceTypeGroup, a.cfg.appID, kmsg.ACLOperationRead, err)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed) && rtype != kmsg.ACLResourceTypeTransactionalId:
		return a.authError(kmsg.ACLResourceTypeTransactionalId, a.transactionalID(), kmsg.ACLOperationWrite, err)
	}
	return a.authError(rtype, name, op, err)
}
