"""The scheduler (Kubernetes' pkg/scheduler): pods without a node are queued (`queue`), filtered and scored
against a node cache (`cache`, `nodeinfo`) by plugins (`plugins/`, named in `registry`) in one cycle
(`framework`), preempting lower-priority pods when nothing fits (`preemption`), and bound through
`pods/binding` in the background while the next pod is scheduled (`scheduler`)."""
