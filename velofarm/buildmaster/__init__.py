"""The Buildbot layer: turns a farm spec into BuildmasterConfig. Thin: steps call the core."""
