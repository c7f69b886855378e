"""The workflow that publishes the sandbox image cannot run here; what can be checked without GitHub:
it labels the image with the label `sandbox pull` and `sandbox load` check, takes its tags from the
recipe code, and never names a moving tag."""

from __future__ import annotations

from runner.image import CONTENT_TAG_LABEL
from tests.conftest import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "build-sandbox.yml"


def _lines() -> list[str]:
    return [line for line in WORKFLOW.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]


def test_the_image_is_labelled_with_the_content_tag_the_appliance_checks() -> None:
    assert any(f'--label "{CONTENT_TAG_LABEL}=$TAG"' in line for line in _lines())


def test_its_tags_come_from_the_recipe_code_and_none_moves() -> None:
    text = "\n".join(_lines())
    assert "from runner.image import base_ref, expected_ref, image_tag" in text
    assert "latest" not in text
    pushed = [line.split("docker push", 1)[1].strip() for line in _lines() if "docker push" in line]
    assert sorted(pushed) == sorted(['"$REMOTE"', '"$REMOTE:$TAG"', '"$REMOTE:$GITHUB_SHA"']), pushed
