"""Worker onboarding: the registry edits, the per-machine bundle, and the workers' state.

The core of `velofarm worker add|list|remove|rotate`; nothing here imports Buildbot.
"""
