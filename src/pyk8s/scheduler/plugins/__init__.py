"""One module per plugin: pure functions on a pod and a NodeInfo, and the Plugin that calls them."""
