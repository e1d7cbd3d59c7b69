"""Worker onboarding: registry edits, per-machine bundles and bootstrap templates, doctor.

Runs in the `velofarm` command (`worker add|list|remove|rotate`, `doctor`). Pure: never imports
Buildbot (`workertac` writes a buildbot.tac as text; `doctor` reuses the worker tools' checks).
"""
