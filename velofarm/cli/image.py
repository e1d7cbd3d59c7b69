"""`velofarm image base|build`: make the builder image here (no registry needed)."""

from __future__ import annotations

import argparse
import time
from typing import Any


def _progress() -> Any:
    started = time.monotonic()

    def show(line: str) -> None:
        print(f"{time.monotonic() - started:6.1f}s  {line}", flush=True)
    return show


def cmd_base(args: argparse.Namespace) -> int:
    from velofarm.images.base import make_base
    print(make_base(_progress(), mirror=args.mirror, rebuild=args.rebuild))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from velofarm.images.builder import build_builder
    image = build_builder(_progress(), base_image=args.base, rebuild=args.rebuild)
    print(f"{image.tag} {image.image_id}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from velofarm.images.deploy import build_deploy_images
    for repo, image in build_deploy_images(_progress(), base_image=args.base).items():
        print(f"{repo.upper().replace('-', '_')}_IMAGE={image.tag}")
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("image", help="make the builder image for Docker workers",
                           description="make the builder image for Docker workers")
    images = group.add_subparsers(dest="image_command", required=True)
    p = images.add_parser("base", help="a Debian bookworm base image made with debootstrap + docker import")
    p.add_argument("--mirror", help="Debian mirror URL (default: the host's apt sources)")
    p.add_argument("--rebuild", action="store_true", help="make it again even if the tag exists")
    p.set_defaults(func=cmd_base)
    p = images.add_parser("build", help="build images/builder/Dockerfile (tag = hash of its inputs)")
    p.add_argument("--base", help="base image (default: debian:bookworm-slim if present, else velofarm's base)")
    p.add_argument("--rebuild", action="store_true", help="build again even if the tag exists")
    p.set_defaults(func=cmd_build)
    p = images.add_parser("deploy", help="the images deploy/compose.yaml runs: master, PostgreSQL, build engine")
    p.add_argument("--base", help="base image (default: debian:bookworm-slim if present, else velofarm's base)")
    p.set_defaults(func=cmd_deploy)
