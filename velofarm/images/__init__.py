"""Container images for Linux builds: a Debian base made with debootstrap, and the builder image.

Runs on the machine that hosts the Docker engine (or talks to it), as `velofarm image ...`.
May import the standard library and velofarm's shared leaves only (no Buildbot); it drives the
`docker` command line with subprocess. Entry points: `base.make_base`, `builder.build_builder`.
"""
