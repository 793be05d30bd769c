"""Build and check the distributions of every package of the workspace.

``hatch run dist:build`` is ``python scripts/dist.py build``: the sdist and the wheel of
every package under ``packages/*`` go into ``dist/``, each wheel built from its sdist, so
that a file the sdist lacks breaks the build here rather than on a user's machine.
``hatch run dist:check`` is ``python scripts/dist.py check``: ``twine check --strict`` and
the content checks of :func:`check_artefacts` on what ``dist/`` holds.

The release workflow (``.github/workflows/release.yml``) and the test suite
(``tests/release``) run these same commands; ``docs/releasing.md`` is the policy they
enforce.
"""

from __future__ import annotations

import argparse
import email.message
import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

LICENSE_EXPRESSION = "MIT"
PROJECT_URL_LABELS = ("Homepage", "Documentation", "Source", "Issues", "Changelog")
REQUIRED_CLASSIFIERS = ("Framework :: AsyncIO", "Typing :: Typed")
REQUIRED_CLASSIFIER_PREFIXES = ("Development Status :: ", "Programming Language :: Python :: 3.")
# PEP 639: with a License-Expression, "License ::" classifiers are deprecated (and refused).
FORBIDDEN_CLASSIFIER_PREFIXES = ("License :: ",)
# PEP 420 namespaces shared by every acc distribution: an __init__.py would hide the others.
NAMESPACE_INITS = ("acc/__init__.py", "acc/backends/__init__.py", "acc/sessions/__init__.py")

_PROJECT_NAME = re.compile(r'^\[project\]\s*$.*?^name\s*=\s*"([^"]+)"', re.M | re.S)
# Markdown link targets: [text](target "title"), <target> autolinks aside, and [ref]: target.
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)


@dataclass(frozen=True)
class Package:
    """A package of the workspace: its folder and its distribution name."""

    directory: Path
    name: str

    @property
    def file_prefix(self) -> str:
        """The normalised name that starts its artefacts' file names (``acc_core``)."""
        return re.sub(r"[-_.]+", "_", self.name).lower()

    def artefacts(self, outdir: Path) -> list[Path]:
        """Its sdists and wheels in ``outdir`` (of any version)."""
        return sorted(
            path
            for pattern in (f"{self.file_prefix}-*.tar.gz", f"{self.file_prefix}-*.whl")
            for path in outdir.glob(pattern)
        )


def workspace_packages(root: Path = ROOT) -> list[Package]:
    """Every package under ``root/packages/*`` (a folder with a ``pyproject.toml``)."""
    found = []
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        match = _PROJECT_NAME.search(pyproject.read_text(encoding="utf-8"))
        if match is None:
            raise SystemExit(f"{pyproject}: no [project] name")
        found.append(Package(pyproject.parent, match.group(1)))
    if not found:
        raise SystemExit(f"no package under {root / 'packages'}")
    return found


# -- build -----------------------------------------------------------------------------------


def build(root: Path = ROOT, outdir: Path | None = None) -> list[Path]:
    """Build the sdist, then the wheel from it, of every package, into ``outdir``.

    Earlier artefacts of the same packages in ``outdir`` are removed first, so that
    ``dist/`` holds one version of each. The build uses this environment's hatchling
    (``--no-isolation``): no download, and the same backend for every package.

    Returns:
        The artefacts written.
    """
    outdir = (outdir or root / "dist").resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for package in workspace_packages(root):
        for stale in package.artefacts(outdir):
            stale.unlink()
        command = [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(outdir),
            str(package.directory),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(
                f"building {package.name} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
        made = package.artefacts(outdir)
        print(f"built {package.name}: {', '.join(path.name for path in made)}")
        written.extend(made)
    return written


# -- check -----------------------------------------------------------------------------------


def twine_check(files: list[Path]) -> list[str]:
    """``twine check --strict`` on ``files``: its output as one problem if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return [f"twine check --strict failed:\n{result.stdout}{result.stderr}".rstrip()]
    return []


def _relative_links(markdown: str) -> list[str]:
    targets = [
        *_INLINE_LINK.findall(markdown),
        *_REFERENCE_LINK.findall(markdown),
        *_HTML_LINK.findall(markdown),
    ]
    return [t for t in targets if not re.match(r"^(https?://|mailto:|#)", t)]


def series_specifier(version: Version) -> SpecifierSet:
    """The range a package pins the other acc packages to: ``>=X.Y,<X.(Y+1)``."""
    major, minor = version.release[0], version.release[1] if len(version.release) > 1 else 0
    return SpecifierSet(f">={major}.{minor},<{major}.{minor + 1}")


def check_metadata(where: str, metadata: email.message.Message, version: Version) -> list[str]:
    """Problems with the core metadata (a wheel's METADATA or an sdist's PKG-INFO)."""
    problems: list[str] = []
    if metadata.get("License-Expression") != LICENSE_EXPRESSION:
        problems.append(
            f"{where}: License-Expression is {metadata.get('License-Expression')!r}, "
            f"not {LICENSE_EXPRESSION!r}"
        )
    if "LICENSE" not in (metadata.get_all("License-File") or []):
        problems.append(f"{where}: no License-File: LICENSE")
    urls: dict[str, str] = {}
    for field in metadata.get_all("Project-URL") or []:
        label, _, url = field.partition(",")
        urls[label.strip()] = url.strip()
    for label in PROJECT_URL_LABELS:
        if not urls.get(label, "").startswith("https://"):
            problems.append(f"{where}: no https Project-URL {label!r} (has {sorted(urls)})")
    classifiers = metadata.get_all("Classifier") or []
    for classifier in REQUIRED_CLASSIFIERS:
        if classifier not in classifiers:
            problems.append(f"{where}: no classifier {classifier!r}")
    for prefix in REQUIRED_CLASSIFIER_PREFIXES:
        if not any(c.startswith(prefix) for c in classifiers):
            problems.append(f"{where}: no classifier {prefix}...")
    for classifier in classifiers:
        if classifier.startswith(FORBIDDEN_CLASSIFIER_PREFIXES):
            problems.append(
                f"{where}: classifier {classifier!r}: the License-Expression says it (PEP 639)"
            )
    if not metadata.get("Requires-Python"):
        problems.append(f"{where}: no Requires-Python")
    if not (metadata.get("Description-Content-Type") or "").startswith("text/markdown"):
        problems.append(f"{where}: the description (the README) is not text/markdown")
    description = metadata.get_payload()
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{where}: no description (the README is the registry page)")
    else:
        for target in _relative_links(description):
            problems.append(
                f"{where}: README link {target!r} is relative: it is broken on the registry"
            )
    wanted = series_specifier(version)
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.name.startswith("acc-") and requirement.specifier != wanted:
            problems.append(
                f"{where}: requires {requirement.name}{requirement.specifier or ' (any version)'}"
                f", not the release series {wanted}"
            )
    return problems


def _parse_metadata(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


def check_wheel(path: Path, root: Path, version: Version) -> list[str]:
    """Problems with one wheel: metadata, licence file, typing marker, stray files."""
    problems: list[str] = []
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        dist_info = next(
            (n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")), None
        )
        if dist_info is None:
            return [f"{path.name}: no .dist-info folder"]
        problems += check_metadata(
            path.name, _parse_metadata(wheel.read(f"{dist_info}/METADATA").decode()), version
        )
        license_name = f"{dist_info}/licenses/LICENSE"
        if license_name not in names:
            problems.append(f"{path.name}: no {license_name}")
        elif wheel.read(license_name) != (root / "LICENSE").read_bytes():
            problems.append(f"{path.name}: its LICENSE differs from the repository's")
        for name in names:
            top = name.split("/")[0]
            if top not in ("acc", dist_info):
                problems.append(f"{path.name}: stray file {name} (only acc/ belongs in a wheel)")
            if "__pycache__" in name or name.endswith((".pyc", ".pyo")):
                problems.append(f"{path.name}: compiled file {name}")
            if name in NAMESPACE_INITS:
                problems.append(f"{path.name}: {name} would hide the other acc packages")
        if not any(n.startswith("acc/") and n.endswith("/py.typed") for n in names):
            problems.append(f"{path.name}: no py.typed marker")
    return problems


def check_sdist(path: Path, root: Path, version: Version) -> list[str]:
    """Problems with one sdist: metadata, and the files a rebuild and a reader need."""
    problems: list[str] = []
    top = path.name.removesuffix(".tar.gz")
    with tarfile.open(path) as sdist:
        members = {m.name: m for m in sdist.getmembers() if m.isfile()}

        def read(name: str) -> bytes | None:
            member = members.get(f"{top}/{name}")
            handle = sdist.extractfile(member) if member is not None else None
            return handle.read() if handle is not None else None

        pkg_info = read("PKG-INFO")
        if pkg_info is None:
            return [f"{path.name}: no {top}/PKG-INFO"]
        problems += check_metadata(path.name, _parse_metadata(pkg_info.decode()), version)
        for name in ("pyproject.toml", "README.md"):
            if read(name) is None:
                problems.append(f"{path.name}: no {name}")
        for name in ("LICENSE", "CHANGELOG.md"):
            content = read(name)
            if content is None:
                problems.append(f"{path.name}: no {name}")
            elif content != (root / name).read_bytes():
                problems.append(f"{path.name}: its {name} differs from the repository's")
        if not any(n.startswith(f"{top}/src/acc/") and n.endswith("/py.typed") for n in members):
            problems.append(f"{path.name}: no py.typed marker under src/acc/")
        for name in members:
            if any(name == f"{top}/src/{init}" for init in NAMESPACE_INITS):
                problems.append(f"{path.name}: {name} would hide the other acc packages")
    return problems


def _artefact_version(path: Path, package: Package) -> str:
    stem = path.name.removesuffix(".tar.gz").removesuffix(".whl")
    return stem[len(package.file_prefix) + 1 :].split("-")[0]


def check_artefacts(
    outdir: Path, root: Path = ROOT, expected_version: str | None = None
) -> list[str]:
    """Every problem with the artefacts in ``outdir``, short of ``twine check``.

    Each package of ``root/packages/*`` must have exactly one sdist and one pure-Python
    wheel there, all of one version (``expected_version``, a release tag's, when given),
    and nothing else may be there: the release publishes the whole folder.
    """
    problems: list[str] = []
    packages = workspace_packages(root)
    versions: dict[str, set[str]] = {}
    claimed: set[Path] = set()
    checked: list[tuple[Package, Path]] = []
    for package in packages:
        artefacts = package.artefacts(outdir)
        claimed.update(artefacts)
        sdists = [p for p in artefacts if p.name.endswith(".tar.gz")]
        wheels = [p for p in artefacts if p.name.endswith(".whl")]
        if len(sdists) != 1 or len(wheels) != 1:
            problems.append(
                f"{package.name}: expected one sdist and one wheel in {outdir}, found "
                f"{[p.name for p in artefacts] or 'none'}"
            )
        for wheel in wheels:
            if not wheel.name.endswith("-py3-none-any.whl"):
                problems.append(f"{wheel.name}: not a pure-Python py3 wheel")
        for artefact in artefacts:
            versions.setdefault(_artefact_version(artefact, package), set()).add(artefact.name)
            checked.append((package, artefact))
    for stray in sorted(set(outdir.glob("*")) - claimed):
        problems.append(f"{stray.name}: not an artefact of a package of packages/* (remove it)")
    if len(versions) > 1:
        problems.append(
            "the packages are released under one version, but dist holds several: "
            + "; ".join(f"{v}: {sorted(names)}" for v, names in sorted(versions.items()))
        )
    if expected_version is not None:
        wanted = expected_version.removeprefix("v")
        for found in sorted(set(versions) - {wanted}):
            problems.append(f"version {found} is not the release's version {wanted}")
    for _package, artefact in checked:
        version = Version(_artefact_version(artefact, _package))
        if artefact.name.endswith(".whl"):
            problems += check_wheel(artefact, root, version)
        else:
            problems += check_sdist(artefact, root, version)
    return problems


def check(outdir: Path, root: Path = ROOT, expected_version: str | None = None) -> list[str]:
    """``twine check --strict``, then :func:`check_artefacts`."""
    files = sorted(p for p in outdir.glob("*") if p.name.endswith((".whl", ".tar.gz")))
    if not files:
        return [f"no artefact in {outdir}: run `hatch run dist:build` first"]
    return twine_check(files) + check_artefacts(outdir, root, expected_version)


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run ``build`` or ``check``; the exit status is 1 when a check finds a problem."""
    parser = argparse.ArgumentParser(prog="scripts/dist.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build every package into --outdir")
    check_command = commands.add_parser("check", help="twine check and content checks")
    for command in (build_command, check_command):
        command.add_argument("--outdir", type=Path, default=ROOT / "dist")
        command.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    check_command.add_argument(
        "--version", dest="expected_version", help="the version every artefact must have"
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        written = build(args.root, args.outdir)
        print(f"{len(written)} artefacts in {args.outdir}")
        return 0
    problems = check(args.outdir, args.root, args.expected_version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.outdir}", file=sys.stderr)
        return 1
    count = len([p for p in args.outdir.glob("*") if p.name.endswith((".whl", ".tar.gz"))])
    print(f"{count} artefacts in {args.outdir}: twine check --strict and content checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
