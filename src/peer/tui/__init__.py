"""Terminal views: pure functions from snapshots to rich renderables."""
