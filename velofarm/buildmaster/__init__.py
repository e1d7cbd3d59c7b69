"""The Buildbot layer: turns a farm spec into BuildmasterConfig. Thin: steps call the core.

Runs in the Buildbot master process. The ONLY package that imports buildbot, twisted or flask
(tests/test_layout.py holds this). Entry point: `config.load_master_config(basedir)`.
`farmplan` holds the layer's names (builders, schedulers, the coordinator) as plain data, without
importing Buildbot, for `velofarm check --list`.
"""
