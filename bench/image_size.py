"""The installed size of what the production image carries: streamfleet's runtime dependencies
(and the extras the image installs), closed over their own requirements, as installed in this
virtualenv — next to the same with the extras for a machine without services (`local`).

    python bench/image_size.py

Sizes are the files each distribution's RECORD lists, as installed here (no Docker needed).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement


def closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """Every distribution `requirements` pull in (environment markers evaluated)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(Requirement(text), "") for text in requirements]
    while pending:
        requirement, extra = pending.pop()
        environment = {**default_environment(), "extra": extra}
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in found:
            for wanted in requirement.extras:
                pending += [(Requirement(r), wanted) for r in found[name].requires or []]
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = distribution
        for wanted in ["", *requirement.extras]:
            pending += [(Requirement(r), wanted) for r in distribution.requires or []]
    return found


def size_mb(distributions: dict[str, metadata.Distribution]) -> float:
    total = 0
    for distribution in distributions.values():
        for file in distribution.files or []:
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def main() -> None:
    project = metadata.distribution("streamfleet")
    requires = project.requires or []
    runtime = [r for r in requires if "extra ==" not in r]
    image = runtime + [r.split(";")[0] for r in requires if 'extra == "flower"' in r]
    local = [r.split(";")[0] for r in requires if 'extra == "local"' in r]
    for label, wanted in (
        ("the image (runtime + flower)", image),
        ("the image with the local extra (as before it was split)", image + local),
    ):
        found = closure(wanted)
        print(f"{label}: {size_mb(found):.0f} MB in {len(found)} distributions")


if __name__ == "__main__":
    main()
