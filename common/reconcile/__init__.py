"""The reconciler: closes the gap between desired and observed state every round."""
