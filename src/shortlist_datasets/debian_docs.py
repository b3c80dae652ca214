"""Debian documentation packages as data sources: which files, who owns them, what is banned.

The ``debian-faq`` recipe reads only files installed by Debian packages and records each
file's owning package, its version and the file's sha256. Some packages are kept out on
purpose because they are reserved for independent checks (`EXCLUDED_PACKAGES`); every
source file is checked twice before it is read: its path must not lie under an excluded
package's documentation folder (`EXCLUDED_PATH_PREFIXES`), and its owner as reported by
``dpkg-query -S`` must not be an excluded package.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from shortlist._fs import sha256_of_file
from shortlist.errors import InvalidInputError

# Debian's own FAQ and manuals, and the Python documentation: held out for independent
# checks. A name also excludes its language and architecture variants ("debian-faq-de",
# "installation-guide-amd64"); "python3*-doc" is a glob.
EXCLUDED_PACKAGES: tuple[str, ...] = (
    "debian-faq",
    "debian-handbook",
    "debian-policy",
    "debian-reference",
    "harden-doc",
    "installation-guide",
    "developers-reference",
    "debmake-doc",
    "maint-guide",
    "debian-kernel-handbook",
    "apt-doc",
    "python3*-doc",
    "python-doc",
)

EXCLUDED_PATH_PREFIXES: tuple[str, ...] = tuple(
    f"/usr/share/doc/{name}" for name in EXCLUDED_PACKAGES if "*" not in name
) + ("/usr/share/doc/python3", "/usr/share/doc/python-", "/usr/share/doc-base/python3")


def is_excluded_package(name: str) -> bool:
    """True when `name` is an excluded package or one of its variants (``debian-faq-de``)."""
    for pattern in EXCLUDED_PACKAGES:
        if fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + "-"):
            return True
    return False


def is_excluded_path(path: str | Path) -> bool:
    """True when `path` lies under the documentation folder of an excluded package."""
    text = str(path)
    return any(text == p or text.startswith(p) for p in EXCLUDED_PATH_PREFIXES)


def check_allowed(path: str | Path, owner: str) -> None:
    """Raise `InvalidInputError` when `path` (owned by package `owner`) must stay out."""
    if is_excluded_path(path) or is_excluded_package(owner):
        raise InvalidInputError(
            f"{path} (package {owner}) is excluded from training data: the packages "
            f"{', '.join(EXCLUDED_PACKAGES)} are held out for independent checks"
        )


def _dpkg_query() -> str:
    found = shutil.which("dpkg-query")
    if found is None:
        raise InvalidInputError(
            "dpkg-query not found: the debian-faq dataset is built from Debian documentation "
            "packages and needs a Debian or Ubuntu system"
        )
    return found


def owners(paths: Iterable[Path]) -> dict[Path, str]:
    """The package owning each path (``dpkg-query -S``); paths no package owns are left out.

    A path claimed by several packages gets the first one listed; diversion lines are
    ignored.
    """
    wanted = [str(p) for p in paths]
    found: dict[Path, str] = {}
    for start in range(0, len(wanted), 500):
        batch = wanted[start : start + 500]
        result = subprocess.run(
            [_dpkg_query(), "-S", *batch], capture_output=True, text=True, check=False
        )
        for line in result.stdout.splitlines():
            if line.startswith(("diversion by", "local diversion")):
                continue
            packages, sep, path = line.partition(": ")
            if not sep:
                continue
            package = packages.split(",")[0].strip().split(":")[0]
            found[Path(path.strip())] = package
    return found


def installed_version(package: str) -> str | None:
    """The installed version of `package`, or None when it is not installed."""
    result = subprocess.run(
        [_dpkg_query(), "-W", "-f", "${Status}\t${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = result.stdout.partition("\t")
    if result.returncode != 0 or not status.endswith(" installed"):
        return None
    return version


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return sha256_of_file(path)
