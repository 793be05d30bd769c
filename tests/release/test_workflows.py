"""CI and release configuration: the steps that cannot run here run commands that do.

The release workflow runs on the hosting platform only, but its build and check steps are
``hatch run dist:build`` and ``hatch run dist:check``, whose commands the release tests
run (test_dist.py); these tests pin the workflow and ``.ci/run`` to those commands.
"""

from __future__ import annotations

import re

from acc_release import ROOT

RELEASE = ROOT / ".github" / "workflows" / "release.yml"
CI = ROOT / ".github" / "workflows" / "ci.yml"


def _run_steps(text: str) -> list[str]:
    return [m.strip() for m in re.findall(r"^\s+(?:- )?run: (.+)$", text, flags=re.M)]


def test_the_release_runs_on_a_version_tag_and_builds_checks_publishes() -> None:
    text = RELEASE.read_text(encoding="utf-8")
    assert re.search(r'^on:\n  push:\n    tags: \["v\*"\]\n', text, flags=re.M)
    steps = _run_steps(text)
    assert "hatch run dist:build" in steps
    assert 'hatch run dist:check --version "${GITHUB_REF_NAME#v}"' in steps
    assert "bash .ci/run" in steps  # the whole suite passes before anything is published
    publish = text[text.index("\n  publish:") :]
    assert "needs: [test, build]" in publish
    assert "id-token: write" in publish  # trusted publishing: no stored token
    assert "uses: pypa/gh-action-pypi-publish@release/v1" in publish
    assert "password" not in publish
    assert "secrets." not in text


def test_ci_on_the_hosting_platform_runs_ci_run() -> None:
    assert _run_steps(CI.read_text(encoding="utf-8")) == ["bash .ci/run"]


def test_ci_run_lints_then_tests_and_fails_on_either() -> None:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lint = text.index("hatch run lint:check || lint_status=$?")
    test = text.index("hatch run test || status=$?")
    assert lint < test
    assert '[ "$status" -eq 5 ]' in text  # pytest's "no tests collected" is a failure
    assert 'if [ "$status" -eq 0 ]; then status=$lint_status; fi' in text
