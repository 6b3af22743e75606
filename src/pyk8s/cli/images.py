"""`pyk8s images`: the node's image store — import, list, pull, seed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

DEFAULT_DATA_DIR = "/var/lib/pyk8s"


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("images", help="the node's image store")
    isub = p.add_subparsers(dest="images_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = isub.add_parser(name, help=help)
        c.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                       help=f"the node's data dir (default {DEFAULT_DATA_DIR})")
        return c

    command("import", "import an OCI layout (directory or tar) or a docker-archive tar").add_argument("file")
    command("list", "list the images in the store")
    pull = command("pull", "pull an image from a registry")
    pull.add_argument("ref")
    pull.add_argument("--creds", default="", metavar="USER:PASSWORD", help="registry credentials")
    command("seed", "build the seed image busybox:latest from the host's busybox if it is missing")
    p.set_defaults(run=run)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError


def _table(images: list[Any]) -> str:
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for img in sorted(images, key=lambda i: i.repo_tags or ("~",)):
        short = img.id.partition(":")[2][:13]
        for tag in img.repo_tags or ("<none>:<none>",):
            repo, _, t = tag.rpartition(":")
            rows.append((repo, t, short, _human(img.size)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "   " + r[3]
                     for r in rows)


async def _run(args: argparse.Namespace) -> int:
    from pyk8s.kubelet.cri import RegistryAuth
    from pyk8s.kubelet.images import ImageStore, ensure_seed_image

    store = ImageStore.for_data_dir(args.data_dir)
    cmd = args.images_command
    if cmd == "import":
        for img in await store.import_archive(args.file):
            print(f"imported {', '.join(img.repo_tags) or '<untagged>'} {img.id}")
    elif cmd == "list":
        print(_table(await store.list_images()))
    elif cmd == "pull":
        auth = []
        if args.creds:
            from pyk8s.kubelet.images.reference import parse

            user, _, password = args.creds.partition(":")
            auth = [RegistryAuth(server=parse(args.ref).registry, username=user, password=password)]
        img = await store.pull_image(args.ref, auth)
        print(f"Image is up to date for {img.id}")
    elif cmd == "seed":
        img = await ensure_seed_image(store)
        print(f"{', '.join(img.repo_tags)} {img.id}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pyk8s.kubelet.cri import ImagePullError
    from pyk8s.kubelet.images import InvalidReference
    from pyk8s.kubelet.images.archive import ArchiveError
    from pyk8s.kubelet.images.layers import LayerError
    from pyk8s.kubelet.images.seed import SeedError

    try:
        return asyncio.run(_run(args))
    except ImagePullError as e:
        print(f"pyk8s images: {e.reason}: {e}", file=sys.stderr)
    except (ArchiveError, LayerError, SeedError, InvalidReference, OSError, ValueError) as e:
        print(f"pyk8s images: {e}", file=sys.stderr)
    return 1
