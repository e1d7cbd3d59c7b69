"""The `velofarm` command: a thin face over the packages; one module per command group.

Runs on an ops machine, a worker host (`doctor`) or the master host. May import every package,
including `velofarm.buildmaster` (for `check`, `check --list`, `reconfig`, `notify`), but never
buildbot, twisted or flask directly (tests/test_layout.py holds this).

Entry points: `main.main()` (the console script); `users`, `workers` (command groups);
`demo.run_demo()`; `localfarm.LocalFarm` (a master and workers in folders, for the demo, the tests
and the benchmarks); `masterdir.create_master()`; `farmlist.farm_listing()` (`check --list`).
"""
