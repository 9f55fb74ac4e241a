"""The reconciler: closes the gap between desired and observed state every round — a pure plan
(`plan`: desired + observed -> actions) applied through the lifecycle's commands (`run`)."""
