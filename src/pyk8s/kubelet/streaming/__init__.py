"""The kubelet's streaming endpoints: CRI log files and the WebSocket channel protocols."""
